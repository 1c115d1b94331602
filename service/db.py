"""The connection pool's lifecycle (service/lease.py) and the named SQL it
runs (service/sqlfiles.py): handlers pass parameters by name,
`db.one("get_user_by_id", id=user_id)`."""

from __future__ import annotations

import asyncio
import functools
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
from typing import Any

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
from service.lease import Lease
from service.logs import first_line
from service.settings import Settings
from service.sqlfiles import Query, QueryFileError
from service.sqlfiles import load as load_queries

__all__ = ["Database", "Query", "QueryFileError", "QueryParamsError", "load_queries"]

log = logging.getLogger("service.db")

# After a failed connect, requests answer 503 at once for this long.
RECONNECT_BACKOFF_SECONDS = 1.0

# How long a request past its user's DB_MAX_PER_USER waits for one back before a 429.
USER_WAIT_SECONDS = 1.0

# The one key of the process-wide search turns (SEARCH_CONCURRENCY).
_EVERY_USER = uuid.UUID(int=0)


def _unknown_state(exc: BaseException) -> bool:
    """Whether a connection that met `exc` is in a state not worth knowing:
    the driver lost track. The server's own errors leave it usable, and so
    does a statement timed out or cancelled (Lease.release waits for it)."""
    return isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError)


_REFUSED = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)


def connect_failure(exc: BaseException) -> tuple[str, str]:
    """(the kind of failure, for /ready, never in the server's words; the reason, for the log)."""
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
    """A query called with a parameter its header does not name, or without one it does."""


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The arguments from keywords in $n order."""
    if len(names) == 1:
        one = itemgetter(names[0])
        return lambda params: (one(params),)
    return itemgetter(*names) if names else lambda params: ()


def _params_error(query: Query, given: Mapping[str, Any]) -> QueryParamsError:
    missing = [n for n in query.names if n not in given]
    unknown = [n for n in given if n not in query.names]
    return QueryParamsError(
        f"{query.name} takes {', '.join(query.names) or 'no parameters'}"
        + (f"; missing {', '.join(missing)}" if missing else "")
        + (f"; unknown {', '.join(unknown)}" if unknown else "")
    )


def migration_ids(migrations_dir: Path) -> tuple[str, ...]:
    """yoyo's ids for the migrations on disk, in order (rollback files excluded)."""
    names = (p.name.removesuffix(".sql") for p in migrations_dir.glob("*.sql"))
    return tuple(sorted(name for name in names if not name.endswith(".rollback")))


def _too_many_in_flight(user: uuid.UUID) -> Exception:
    metrics.USER_SHARE_REFUSED.inc()
    log.warning("user %s: too many requests in flight; answered 429", user)
    return TooManyInFlight()


def _search_refused(reason: str, error: type[Exception]) -> Exception:
    metrics.SEARCH_REFUSED.labels(reason).inc()
    return error()


def _set_local(values: Mapping[str, str]) -> str:
    return "; ".join(f"SET LOCAL {k} = {v}" for k, v in values.items())


def _give_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class UserShares:
    """At most `share` pool connections per user, per process. Past it, a request
    waits (first come, first served, taking nothing from the pool) up to `wait`
    seconds for one of that user's own, then raises `refuse(user)`."""

    def __init__(
        self, share: int, wait: float, refuse: Callable[[uuid.UUID], Exception] | None = None
    ) -> None:
        self.share = share
        self.wait = wait
        self.refuse = refuse or _too_many_in_flight
        self.held: dict[uuid.UUID, int] = {}
        self.waiting: dict[uuid.UUID, deque[asyncio.Future[None]]] = {}

    async def take(self, user: uuid.UUID) -> None:
        if not self.try_take(user):
            await self.wait_for_one(user)

    def try_take(self, user: uuid.UUID) -> bool:
        """Take one of the user's share if one is free (the hot path)."""
        held = self.held.get(user, 0)
        if held < self.share:
            self.held[user] = held + 1
            return True
        return False

    async def wait_for_one(self, user: uuid.UUID) -> None:
        """Wait for a connection the user gives back; refused after `wait`
        seconds (a plain timer costs a third less than asyncio.timeout)."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.waiting.setdefault(user, deque()).append(waiter)
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
    """A pool that may not exist yet: the first request once the database is up builds it."""

    def __init__(self, settings: Settings, queries: dict[str, Query]) -> None:
        self.settings = settings
        self._statements = {n: (q, _picker(q.names)) for n, q in queries.items()}
        self.pool: Lease | None = None
        self.pool_max = settings.db_pool_max
        self._lock = asyncio.Lock()
        self._next_attempt = 0.0
        self.shares = UserShares(settings.db_max_per_user, USER_WAIT_SECONDS)
        # Searches (API.md "Limits"): one per user, then SEARCH_CONCURRENCY in the process.
        self.search_turns = UserShares(
            1, USER_WAIT_SECONDS, lambda _user: _search_refused("in_progress", SearchInProgress)
        )
        self.search_slots = UserShares(
            settings.search_concurrency,
            USER_WAIT_SECONDS,
            lambda _key: _search_refused("busy", SearchesBusy),
        )
        self._in_use = 0  # connections _acquire handed out, not yet released
        self.pooled = settings.database_pooled
        # Through a pooler asyncpg cancels a statement; else it gives up 1 s after the server.
        self.timeout = settings.db_statement_timeout + (0.0 if self.pooled else 1.0)
        self.last_failure: str | None = None  # for /ready; None once a pool exists
        statement_ms = int(settings.db_statement_timeout * 1000)
        self._timeouts = {
            "statement_timeout": str(statement_ms),
            "idle_in_transaction_session_timeout": str(statement_ms * 2),
        }
        self._set_local = _set_local(self._timeouts)
        search = {"statement_timeout": str(max(1, round(settings.search_timeout * 1000)))}
        if self.pooled:  # a pooler refuses startup settings, and a SET would leak
            search = {**self._timeouts, **search}
        self._search_begin = f"BEGIN READ ONLY; {_set_local(search)}"

    async def open(self) -> None:
        try:
            await self._ensure_pool()
        except DatabaseUnavailable:
            log.warning("database unreachable at startup; serving anyway, will retry on demand")

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self.settings.shutdown_timeout)
            except TimeoutError:
                pool.terminate()

    async def _ensure_pool(self) -> Lease:
        if self.pool is not None:
            return self.pool
        async with self._lock:
            if self.pool is not None:
                return self.pool
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
            connect = functools.partial(
                asyncpg.connect,
                url.asyncpg_dsn(),
                timeout=s.db_connect_timeout,
                command_timeout=self.timeout,
                # A pooler would hand named statements to other clients.
                statement_cache_size=0 if self.pooled else 100,
                server_settings={
                    "application_name": "todo-api",
                    **({} if self.pooled else self._timeouts),
                },
            )
            try:
                self.pool = await Lease.open(connect, s.db_pool_min, s.db_pool_max, self.timeout)
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
            return self.pool

    async def _acquire(self) -> tuple[Lease, asyncpg.Connection, uuid.UUID | None]:
        """A pool connection within the acting user's share; give all three to _release."""
        user = ACTING_USER.get()
        if user is not None and not self.shares.try_take(user):
            await self.shares.wait_for_one(user)
        try:
            pool = self.pool or await self._ensure_pool()
            self._in_use += 1
            try:
                if self._in_use <= self.pool_max:
                    # One is free: no timeout, whose extra task costs more.
                    return pool, await pool.acquire(), user
                # Every one is busy: wait up to DB_CONNECT_TIMEOUT (todo_db_pool_wait_seconds).
                start = time.perf_counter()
                try:
                    async with asyncio.timeout(self.settings.db_connect_timeout):
                        return pool, await pool.acquire(), user
                except TimeoutError as exc:
                    if pool.get_idle_size() == 0 and pool.get_size() >= self.pool_max:
                        raise PoolExhausted() from exc  # up, but full: not an outage
                    raise
                finally:
                    metrics.POOL_WAIT.observe(time.perf_counter() - start)
            except BaseException as exc:
                self._in_use -= 1
                if isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
                    raise DatabaseUnavailable() from exc
                raise
        except BaseException:
            if user is not None:
                self.shares.give_back(user)
            raise

    async def _release(
        self,
        pool: Lease,
        conn: asyncpg.Connection,
        user: uuid.UUID | None,
        exc: BaseException | None = None,
    ) -> None:
        """Give back what _acquire gave; `exc`, what the connection met, if anything."""
        try:
            await pool.release(conn, discard=exc is not None and _unknown_state(exc))
        finally:
            self._in_use -= 1
            if user is not None:
                self.shares.give_back(user)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """For statements that must commit together: pass the connection as `conn=`."""
        pool, conn, user = await self._acquire()
        met = None
        try:
            async with conn.transaction():
                if self.pooled:  # scoped to this transaction, so nothing leaks
                    await conn.execute(self._set_local)
                yield conn
        except BaseException as exc:
            met = exc
            raise
        finally:
            await self._release(pool, conn, user, met)

    @asynccontextmanager
    async def search(self, user: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
        """A connection for a `q` listing's statements (pass it as `conn=`):
        the user's one search turn (else SearchInProgress, 429), one of the
        process's SEARCH_CONCURRENCY (else SearchesBusy, 503), then a read-only
        transaction with statement_timeout SEARCH_TIMEOUT (past it, SearchTooBroad, 422)."""
        await self.search_turns.take(user)
        try:
            await self.search_slots.take(_EVERY_USER)
            try:
                pool, conn, acting = await self._acquire()
                met = None
                try:
                    await conn.execute(self._search_begin)  # one round trip for all
                    try:
                        yield conn
                    finally:
                        if not conn.is_closed():
                            await conn.execute("ROLLBACK")  # it only read
                except BaseException as exc:
                    met = exc
                    raise
                finally:
                    await self._release(pool, conn, acting, met)
            except asyncpg.QueryCanceledError:
                raise _search_refused("too_broad", SearchTooBroad) from None
            finally:
                self.search_slots.give_back(_EVERY_USER)
        finally:
            self.search_turns.give_back(user)

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
            result = await getattr(c, method)(query.sql, *args, timeout=self.timeout)
        except BaseException as exc:
            await self._release(pool, c, user, exc)
            raise
        await self._release(pool, c, user)
        return result

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
