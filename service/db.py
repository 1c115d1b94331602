"""The asyncpg pool's lifecycle and the named SQL it runs.

Every `sql/queries/<resource>/<name>.sql` is read once at startup, with the
header grammar of service/sqlfiles.py (sqlc/aiosql style):

    -- name: get_user_by_id :one
    -- Params: $1 id uuid
    -- Purpose in one line.
    -- Index: users_pkey.

The file's text is exactly what the server runs, so a DBA can paste it into
psql. Handlers pass the parameters by name, `db.one("get_user_by_id",
id=user_id)`, and never hold SQL; a missing or unknown name is a bug
(QueryParamsError) raised before any connection is taken.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg

from service import metrics
from service.dburl import parse_database_url
from service.errors import (
    DatabaseUnavailable,
    PoolExhausted,
    SearchesBusy,
    SearchInProgress,
    SearchTooBroad,
    TooManyInFlight,
)
from service.keys import ACTING_USER
from service.logs import first_line
from service.settings import Settings
from service.sqlfiles import Query, QueryFileError, load

__all__ = ["Database", "Query", "QueryFileError", "QueryParamsError", "load_queries"]

log = logging.getLogger("service.db")

# After a failed connect, requests answer 503 at once for this long instead of
# each waiting for its own connect timeout.
RECONNECT_BACKOFF_SECONDS = 1.0

# How long a request past its user's DB_MAX_PER_USER waits for one of that
# user's connections to come back before it answers 429. A healthy request
# holds a connection for milliseconds, so a burst queues and is served well
# within it; only a user whose requests are stuck (row locks, slow searches)
# reaches it, and learns within a second instead of after DB_CONNECT_TIMEOUT.
USER_WAIT_SECONDS = 1.0

# The one key of the process-wide search turns (SEARCH_CONCURRENCY).
_EVERY_USER = uuid.UUID(int=0)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's per-release `RESET ALL; UNLISTEN *; ...`, a round
    trip on every request. The service never changes session state (no SET,
    LISTEN, advisory locks or temp tables), and asyncpg still rolls back any
    transaction left open before calling this."""


_REFUSED = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)


def connect_failure(exc: BaseException) -> tuple[str, str]:
    """(the kind of failure, for /ready; the full reason, for the log). /ready
    never repeats the server's words: they name roles, databases and hosts
    (API.md). The log has them; they never hold the password."""
    text = first_line(exc) or type(exc).__name__
    if isinstance(exc, _REFUSED):
        if "SSL" in text or "encryption" in text:
            return "the database refused the connection without TLS (pg_hba)", text
        return "the database refused the service's credentials", text
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "TLS" in text:
        return "TLS with the database failed", text
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database named in DATABASE_URL does not exist", text
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return "the database refused the connection", text
    errno = exc.errno if isinstance(exc, OSError) else None
    why = os.strerror(errno) if errno else type(exc).__name__  # asyncio's text has the address
    return f"the database is unreachable ({why})", f"{type(exc).__name__}: {text}"


Conn = asyncpg.Connection | None  # one/many/val/exec run on it inside transaction()


class QueryParamsError(TypeError):
    """A query called with a parameter its header does not name, or without
    one it does: a bug in the caller."""


def load_queries(root: Path) -> dict[str, Query]:
    """Every statement under `root` by name; QueryFileError on a bad file."""
    return load(root)


class _Statement(NamedTuple):
    """A query ready to run: its arguments picked from keywords in $n order."""

    query: Query
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]]


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        one = itemgetter(names[0])
        return lambda params: (one(params),)
    return lambda params: ()


def _params_error(query: Query, given: Mapping[str, Any]) -> QueryParamsError:
    missing = [n for n in query.names if n not in given]
    unknown = [n for n in given if n not in query.names]
    return QueryParamsError(
        f"{query.name} takes {', '.join(query.names) or 'no parameters'}"
        + (f"; missing {', '.join(missing)}" if missing else "")
        + (f"; unknown {', '.join(unknown)}" if unknown else "")
    )


def migration_ids(migrations_dir: Path) -> tuple[str, ...]:
    """yoyo's ids for the migrations on disk, in order: the file name without
    `.sql`, rollback files excluded."""
    return tuple(
        sorted(
            p.name.removesuffix(".sql")
            for p in migrations_dir.glob("*.sql")
            if not p.name.endswith(".rollback.sql")
        )
    )


def _too_many_in_flight(user: uuid.UUID) -> Exception:
    metrics.USER_SHARE_REFUSED.inc()
    log.warning("user %s: too many requests in flight; answered 429", user)
    return TooManyInFlight()


def _search_in_progress(user: uuid.UUID) -> Exception:
    metrics.SEARCH_REFUSED.labels("in_progress").inc()
    return SearchInProgress()


def _searches_busy(_key: uuid.UUID) -> Exception:
    metrics.SEARCH_REFUSED.labels("busy").inc()
    return SearchesBusy()


def _give_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class UserShares:
    """At most `share` pool connections per user at a time, per process.
    Past it, a user's request waits, first come first served, for one of
    that user's own connections to come back (handed straight to it), at
    most `wait` seconds, then TooManyInFlight. It takes nothing from the pool
    while it waits, so other users never queue behind it. A user has an
    entry only while holding connections (or waiting for one). `refuse`
    makes what a waiter that gave up raises instead (the search turns)."""

    def __init__(
        self, share: int, wait: float, refuse: Callable[[uuid.UUID], Exception] | None = None
    ) -> None:
        self.share = share
        self.wait = wait
        self.refuse = refuse or _too_many_in_flight
        self.held: dict[uuid.UUID, int] = {}
        self.waiting: dict[uuid.UUID, deque[asyncio.Future[None]]] = {}

    def try_take(self, user: uuid.UUID) -> bool:
        """Take one of the user's share if one is free (the hot path)."""
        held = self.held.get(user, 0)
        if held < self.share:
            self.held[user] = held + 1
            return True
        return False

    async def wait_for_one(self, user: uuid.UUID) -> None:
        """Wait for a connection the user gives back; TooManyInFlight after
        `wait` seconds. A plain timer, not asyncio.timeout: this runs for
        every request past the share, and the timer costs a third less."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        queue = self.waiting.get(user)
        if queue is None:
            queue = self.waiting[user] = deque()
        queue.append(waiter)
        timer = loop.call_later(self.wait, _give_up, waiter)
        try:
            await waiter
        except TimeoutError:
            self._forget(user, waiter)
            raise self.refuse(user) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give_back(user)  # handed one, but nobody will use it
            else:
                self._forget(user, waiter)
            raise
        finally:
            timer.cancel()

    def give_back(self, user: uuid.UUID) -> None:
        """The user's connection came back: to their next waiter, if any."""
        queue = self.waiting.get(user)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if queue is not None:
            del self.waiting[user]
        held = self.held[user] - 1
        if held:
            self.held[user] = held
        else:
            del self.held[user]

    def _forget(self, user: uuid.UUID, waiter: asyncio.Future[None]) -> None:
        queue = self.waiting.get(user)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.waiting[user]


class Database:
    """A pool that may not exist yet. The service starts and serves /health
    with the database down; the first request after it returns builds the
    pool. Connection trouble becomes DatabaseUnavailable (503)."""

    def __init__(self, settings: Settings, queries: dict[str, Query]) -> None:
        self.settings = settings
        self.queries = queries
        self._statements = {n: _Statement(q, _picker(q.names)) for n, q in queries.items()}
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._next_attempt = 0.0
        self.shares = UserShares(settings.db_max_per_user, USER_WAIT_SECONDS)
        # Searches (API.md "Limits"): one at a time per user, then at most
        # SEARCH_CONCURRENCY in the process, each waiting as briefly as a
        # share does; neither holds a connection while it waits.
        self.search_turns = UserShares(1, USER_WAIT_SECONDS, _search_in_progress)
        self.search_slots = UserShares(
            settings.search_concurrency, USER_WAIT_SECONDS, _searches_busy
        )
        self._in_use = 0  # connections _acquire handed out, not yet released
        self.timeout = settings.db_statement_timeout + 1.0
        self.pooled = settings.database_pooled
        # Why the last connect failed, with the server's reason, for /ready;
        # None once a pool exists.
        self.last_failure: str | None = None
        statement_ms = int(settings.db_statement_timeout * 1000)
        self._timeouts = {
            "statement_timeout": str(statement_ms),
            "idle_in_transaction_session_timeout": str(statement_ms * 2),
        }
        if self.pooled:
            # A transaction pooler refuses these as startup parameters, and a
            # SET would leak to its other clients. asyncpg cancels a statement
            # that outlives its timeout (PgBouncer forwards the cancel), which
            # costs no round trip, where SET LOCAL would need a transaction
            # around every statement.
            self.timeout = settings.db_statement_timeout
        self._set_local = "; ".join(f"SET LOCAL {k} = {v}" for k, v in self._timeouts.items())
        search_ms = max(1, round(settings.search_timeout * 1000))
        self._search_begin = "; ".join(
            ["BEGIN READ ONLY"]
            + [
                f"SET LOCAL {k} = {search_ms if k == 'statement_timeout' else v}"
                for k, v in self._timeouts.items()
                if self.pooled or k == "statement_timeout"
            ]
        )

    @property
    def pool(self) -> asyncpg.Pool | None:
        return self._pool

    @property
    def pool_max(self) -> int:
        return self.settings.db_pool_max

    async def open(self) -> None:
        try:
            await self._ensure_pool()
        except DatabaseUnavailable:
            log.warning("database unreachable at startup; serving anyway, will retry on demand")

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self.settings.shutdown_timeout)
            except TimeoutError:
                pool.terminate()

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is not None:
                return self._pool
            if time.monotonic() < self._next_attempt:
                raise DatabaseUnavailable()
            s = self.settings
            url = parse_database_url(s.database_url)
            if url.channel_binding_required:
                log.info(
                    "channel_binding=require: migrate honours it (libpq); serve's driver, "
                    "asyncpg, has no channel binding and relies on TLS (sslmode=%s)",
                    url.params.get("sslmode", "prefer"),
                )
            try:
                self._pool = await asyncpg.create_pool(
                    url.asyncpg_dsn(),
                    min_size=s.db_pool_min,
                    max_size=s.db_pool_max,
                    timeout=s.db_connect_timeout,
                    command_timeout=self.timeout,
                    max_inactive_connection_lifetime=300,
                    reset=_keep_session,
                    # A pooler would hand named statements to other clients;
                    # unnamed ones stay put (asyncpg's Parse is followed by
                    # Flush, not Sync, so the server is not released between).
                    statement_cache_size=0 if self.pooled else 100,
                    server_settings={
                        "application_name": "todo-api",
                        **({} if self.pooled else self._timeouts),
                    },
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._next_attempt = time.monotonic() + RECONNECT_BACKOFF_SECONDS
                self.last_failure, reason = connect_failure(exc)
                log.warning("database connect to %s failed: %s", url.redacted(), reason)
                raise DatabaseUnavailable() from exc
            self.last_failure = None
            log.info(
                "database pool ready (min %d, max %d%s)",
                s.db_pool_min,
                s.db_pool_max,
                ", through a transaction pooler" if self.pooled else "",
            )
            return self._pool

    async def _acquire(self) -> tuple[asyncpg.Pool, asyncpg.Connection, uuid.UUID | None]:
        """A pool connection, within the acting user's share; hand all three
        back to _release."""
        user = ACTING_USER.get()
        if user is not None and not self.shares.try_take(user):
            await self.shares.wait_for_one(user)
        try:
            pool = self._pool or await self._ensure_pool()
            self._in_use += 1
            try:
                if self._in_use <= self.settings.db_pool_max:
                    # One is free now (asyncpg's get_idle_size() walks every
                    # connection): no timeout, whose extra task costs more.
                    # Connecting has its own.
                    return pool, await pool.acquire(), user
                return pool, await self._wait_for_pool(pool), user
            except BaseException as exc:
                self._in_use -= 1
                if isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
                    raise DatabaseUnavailable() from exc
                raise
        except BaseException:
            if user is not None:
                self.shares.give_back(user)
            raise

    async def _wait_for_pool(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        """Every connection is busy (or not yet made): wait up to
        DB_CONNECT_TIMEOUT, counted in todo_db_pool_wait_seconds."""
        start = time.perf_counter()
        try:
            return await pool.acquire(timeout=self.settings.db_connect_timeout)
        except TimeoutError as exc:
            if pool.get_idle_size() == 0 and pool.get_size() >= self.settings.db_pool_max:
                raise PoolExhausted() from exc  # up, but full: not an outage
            raise
        finally:
            metrics.POOL_WAIT.observe(time.perf_counter() - start)

    async def _release(
        self, pool: asyncpg.Pool, conn: asyncpg.Connection, user: uuid.UUID | None
    ) -> None:
        try:
            await pool.release(conn)
        finally:
            self._in_use -= 1
            if user is not None:
                self.shares.give_back(user)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """For several statements that must commit together: pass the
        connection to one/many/val/exec as `conn=`."""
        pool, conn, user = await self._acquire()
        try:
            async with conn.transaction():
                if self.pooled:  # scoped to this transaction, so nothing leaks
                    await conn.execute(self._set_local)
                yield conn
        finally:
            await self._release(pool, conn, user)

    @asynccontextmanager
    async def search(self, user: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
        """A connection for a `q` listing's statements (pass it as `conn=`):
        the user's one search turn (SearchInProgress, 429, after a short
        wait), one of the process's SEARCH_CONCURRENCY (SearchesBusy, 503),
        then a read-only transaction whose statement_timeout is SEARCH_TIMEOUT; past
        it, SearchTooBroad (422). Turns pass first come, first served; one
        whose waiter is cancelled passes on."""
        await self._take(self.search_turns, user)
        try:
            await self._take(self.search_slots, _EVERY_USER)
            try:
                pool, conn, acting = await self._acquire()
                try:
                    await conn.execute(self._search_begin)  # one round trip for both
                    try:
                        yield conn
                    finally:
                        if not conn.is_closed():
                            await conn.execute("ROLLBACK")  # it only read
                except asyncpg.QueryCanceledError:
                    metrics.SEARCH_REFUSED.labels("too_broad").inc()
                    raise SearchTooBroad() from None
                finally:
                    await self._release(pool, conn, acting)
            finally:
                self.search_slots.give_back(_EVERY_USER)
        finally:
            self.search_turns.give_back(user)

    @staticmethod
    async def _take(turns: UserShares, key: uuid.UUID) -> None:
        if not turns.try_take(key):
            await turns.wait_for_one(key)

    async def _run(
        self,
        shape: str,
        method: str,
        name: str,
        params: dict[str, Any],
        conn: asyncpg.Connection | None,
    ) -> Any:
        query, pick = self._statements[name]
        if query.shape != shape:
            raise QueryFileError(f"{name} is {query.shape}, called as {shape}")
        try:
            args = pick(params)
        except KeyError:
            raise _params_error(query, params) from None
        if len(args) != len(params):
            raise _params_error(query, params)
        if conn is not None:
            return await getattr(conn, method)(query.sql, *args, timeout=self.timeout)
        # The hot path: acquire and release by hand, no context-manager frames.
        pool, c, user = await self._acquire()
        try:
            return await getattr(c, method)(query.sql, *args, timeout=self.timeout)
        finally:
            await self._release(pool, c, user)

    async def one(self, name: str, /, *, conn: Conn = None, **params: Any) -> Any:
        """A `:one` query: the row, or None."""
        return await self._run(":one", "fetchrow", name, params, conn)

    async def many(self, name: str, /, *, conn: Conn = None, **params: Any) -> Any:
        """A `:many` query: a list of rows."""
        return await self._run(":many", "fetch", name, params, conn)

    async def val(self, name: str, /, *, conn: Conn = None, **params: Any) -> Any:
        """A `:val` query: the first column of the first row, or None."""
        return await self._run(":val", "fetchval", name, params, conn)

    async def exec(self, name: str, /, *, conn: Conn = None, **params: Any) -> str:
        """An `:exec` query: the command tag, e.g. 'DELETE 1'."""
        return await self._run(":exec", "execute", name, params, conn)
