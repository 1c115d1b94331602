"""The asyncpg pool's lifecycle and the named SQL it runs.

Every `sql/queries/<resource>/<name>.sql` is read once at startup. Its header
names it and the shape of its result, sqlc/aiosql style:

    -- name: get_user_by_id :one
    -- Purpose in one line.
    -- Index: users_pkey.

The file's text is exactly what the server runs, so a DBA can paste it into
psql. Handlers call `db.one("get_user_by_id", user_id)` and never hold SQL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from service.errors import DatabaseUnavailable
from service.settings import Settings

log = logging.getLogger("service.db")

SHAPES = (":one", ":many", ":val", ":exec")
_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z][a-z0-9_]*)\s+(?P<shape>:\w+)\s*$")
# After a failed connect, requests answer 503 at once for this long instead of
# each waiting for its own connect timeout.
RECONNECT_BACKOFF_SECONDS = 1.0


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's per-release `RESET ALL; UNLISTEN *; ...`, a round
    trip on every request. The service never changes session state (no SET,
    LISTEN, advisory locks or temp tables), and asyncpg still rolls back any
    transaction left open before calling this."""


class QueryFileError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    shape: str
    sql: str
    path: Path


def load_queries(root: Path) -> dict[str, Query]:
    """Read every query file under `root`, checking its header."""
    queries: dict[str, Query] = {}
    for path in sorted(root.rglob("*.sql")):
        text = path.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else ""
        match = _HEADER.match(first)
        if not match:
            raise QueryFileError(f"{path}: first line must be '-- name: <name> <shape>'")
        name, shape = match["name"], match["shape"]
        if name != path.stem:
            raise QueryFileError(f"{path}: header names {name!r}, file is {path.stem!r}")
        if shape not in SHAPES:
            raise QueryFileError(f"{path}: shape {shape!r} is not one of {SHAPES}")
        if name in queries:
            raise QueryFileError(f"{path}: {name!r} is also defined in {queries[name].path}")
        queries[name] = Query(name=name, shape=shape, sql=text, path=path)
    return queries


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


class Database:
    """A pool that may not exist yet. The service starts and serves /health
    with the database down; the first request after it returns builds the
    pool. Connection trouble becomes DatabaseUnavailable (503)."""

    def __init__(self, settings: Settings, queries: dict[str, Query]) -> None:
        self.settings = settings
        self.queries = queries
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._next_attempt = 0.0
        self.timeout = settings.db_statement_timeout + 1.0

    @property
    def pool(self) -> asyncpg.Pool | None:
        return self._pool

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
            try:
                self._pool = await asyncpg.create_pool(
                    s.database_url,  # asyncpg reads postgresql:// URLs, sslmode too
                    min_size=s.db_pool_min,
                    max_size=s.db_pool_max,
                    timeout=s.db_connect_timeout,
                    command_timeout=self.timeout,
                    max_inactive_connection_lifetime=300,
                    reset=_keep_session,
                    server_settings={
                        "application_name": "todo-api",
                        "statement_timeout": str(int(s.db_statement_timeout * 1000)),
                        "idle_in_transaction_session_timeout": str(
                            int(s.db_statement_timeout * 2000)
                        ),
                    },
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._next_attempt = time.monotonic() + RECONNECT_BACKOFF_SECONDS
                log.warning("database connect failed: %s", type(exc).__name__)
                raise DatabaseUnavailable() from exc
            log.info("database pool ready (min %d, max %d)", s.db_pool_min, s.db_pool_max)
            return self._pool

    async def _acquire(self) -> tuple[asyncpg.Pool, asyncpg.Connection]:
        pool = self._pool or await self._ensure_pool()
        try:
            if pool.get_idle_size():  # free now: skip the timeout's extra task
                return pool, await pool.acquire()
            return pool, await pool.acquire(timeout=self.settings.db_connect_timeout)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable() from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """For several statements that must commit together: pass the
        connection to one/many/val/exec as `conn=`."""
        pool, conn = await self._acquire()
        try:
            async with conn.transaction():
                yield conn
        finally:
            await pool.release(conn)

    async def _run(
        self,
        shape: str,
        method: str,
        name: str,
        args: tuple[Any, ...],
        conn: asyncpg.Connection | None,
    ) -> Any:
        query = self.queries[name]
        if query.shape != shape:
            raise QueryFileError(f"{name} is {query.shape}, called as {shape}")
        if conn is not None:
            return await getattr(conn, method)(query.sql, *args, timeout=self.timeout)
        # The hot path: acquire and release by hand, no context-manager frames.
        pool, c = await self._acquire()
        try:
            return await getattr(c, method)(query.sql, *args, timeout=self.timeout)
        finally:
            await pool.release(c)

    async def one(self, name: str, *args: Any, conn: asyncpg.Connection | None = None) -> Any:
        """A `:one` query: the row, or None."""
        return await self._run(":one", "fetchrow", name, args, conn)

    async def many(self, name: str, *args: Any, conn: asyncpg.Connection | None = None) -> Any:
        """A `:many` query: a list of rows."""
        return await self._run(":many", "fetch", name, args, conn)

    async def val(self, name: str, *args: Any, conn: asyncpg.Connection | None = None) -> Any:
        """A `:val` query: the first column of the first row, or None."""
        return await self._run(":val", "fetchval", name, args, conn)

    async def exec(self, name: str, *args: Any, conn: asyncpg.Connection | None = None) -> str:
        """An `:exec` query: the command tag, e.g. 'DELETE 1'."""
        return await self._run(":exec", "execute", name, args, conn)
