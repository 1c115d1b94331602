"""The minimal aiohttp + asyncpg handler, issue 27's yardstick for get one.

    .venv/bin/python bench/minimal.py --database-url URL --token TOKEN --user-id UUID \
        --port 8101 --lease lease     # the service's own (service/lease.py)
    .venv/bin/python bench/minimal.py ... --lease pool    # asyncpg's Pool, as the service had it
    .venv/bin/python bench/minimal.py ... --lease queue   # a bare queue of connections

GET /api/tasks/{id} only: the bearer token is looked up in a dict (no JWT,
no session check), the service's own get_task.sql runs, and the row goes out
through orjson. None of the service's per-request work (access line,
metrics, limits, CORS, request id, problem documents): what the stack alone
costs, so CPU a request can be compared with the service's in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import orjson
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service import sqlfiles  # noqa: E402
from service.lease import Lease  # noqa: E402

POOL_SIZE = 20


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """What the service gave asyncpg's Pool for its per-release RESET: nothing to reset."""


def _lease_of(kind: str, url: str) -> Callable[[], AsyncIterator[asyncpg.Connection]]:
    """A context manager factory lending one connection, and its set-up."""
    state: dict = {}

    async def start() -> None:
        if kind == "lease":
            connect = functools.partial(asyncpg.connect, url, statement_cache_size=100)
            state["pool"] = await Lease.open(connect, POOL_SIZE, POOL_SIZE)
        elif kind == "pool":
            state["pool"] = await asyncpg.create_pool(
                url,
                min_size=POOL_SIZE,
                max_size=POOL_SIZE,
                max_inactive_connection_lifetime=300,
                reset=_keep_session,
                statement_cache_size=100,
            )
        else:
            queue: asyncio.Queue = asyncio.Queue()
            for _ in range(POOL_SIZE):
                queue.put_nowait(await asyncpg.connect(url, statement_cache_size=100))
            state["queue"] = queue

    @asynccontextmanager
    async def lease() -> AsyncIterator[asyncpg.Connection]:
        if kind == "lease":
            pool = state["pool"]
            conn = await pool.acquire()
            try:
                yield conn
            finally:
                await pool.release(conn)
            return
        if kind == "pool":
            async with state["pool"].acquire() as conn:
                yield conn
            return
        conn = await state["queue"].get()
        try:
            yield conn
        finally:
            state["queue"].put_nowait(conn)

    lease.start = start  # type: ignore[attr-defined]
    return lease


def app(url: str, lease_kind: str, tokens: dict[str, uuid.UUID]) -> web.Application:
    query = sqlfiles.load(REPO / "sql" / "queries")["get_task"].sql
    lease = _lease_of(lease_kind, url)

    async def get_one(request: web.Request) -> web.Response:
        user = tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        if user is None:
            return web.Response(status=401)
        try:
            task_id = uuid.UUID(request.match_info["id"])
        except ValueError:
            return web.Response(status=404)
        async with lease() as conn:
            row = await conn.fetchrow(query, task_id, user)
        if row is None:
            return web.Response(status=404)
        body = orjson.dumps({**row[0]}, default=str)
        return web.Response(body=body, content_type="application/json")

    async def on_startup(_app: web.Application) -> None:
        await lease.start()  # type: ignore[attr-defined]

    application = web.Application()
    application.on_startup.append(on_startup)
    application.router.add_get("/api/tasks/{id}", get_one)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--token", required=True, help="the bearer token to accept")
    parser.add_argument("--user-id", required=True, type=uuid.UUID)
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--lease", choices=["lease", "pool", "queue"], default="lease")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # as the service: uvloop where it exists
        pass
    web.run_app(
        app(args.database_url, args.lease, {args.token: args.user_id}),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
