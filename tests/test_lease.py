"""service/lease.py against a real PostgreSQL: each property the service
had from asyncpg's Pool (the outage, pooler, per-user share and drain tests
run the whole service over it)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from service import lease as lease_module
from service.db import _unknown_state
from service.lease import Lease
from tests.conftest import ADMIN_URL


@pytest.fixture
def connect(migrated_database):
    """asyncpg.connect to the test database, counting the connections it opens."""
    opened = []

    async def connect_counted() -> asyncpg.Connection:
        conn = await asyncpg.connect(migrated_database)
        opened.append(conn)
        return conn

    connect_counted.opened = opened
    return connect_counted


async def backend_pid(lease: Lease) -> int:
    conn = await lease.acquire()
    try:
        return conn.get_server_pid()
    finally:
        await lease.release(conn)


async def test_opens_min_size_at_once_and_more_only_on_demand(connect):
    lease = await Lease.open(connect, 2, 4)
    assert (lease.get_size(), lease.get_idle_size(), len(connect.opened)) == (2, 2, 2)
    held = [await lease.acquire() for _ in range(3)]
    assert (lease.get_size(), lease.get_idle_size(), len(connect.opened)) == (3, 0, 3)
    for conn in held:
        await lease.release(conn)
    assert (lease.get_size(), lease.get_idle_size()) == (3, 3)
    await lease.close()
    assert all(conn.is_closed() for conn in connect.opened)


async def test_a_failed_open_raises_and_leaves_nothing_open(migrated_database):
    calls, opened = [], []

    async def second_fails() -> asyncpg.Connection:
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionRefusedError("no")
        opened.append(await asyncpg.connect(migrated_database))
        return opened[-1]

    with pytest.raises(ConnectionRefusedError):
        await Lease.open(second_fails, 3, 3)
    assert len(opened) == 2
    assert all(conn.is_closed() for conn in opened)


async def test_past_max_size_a_request_waits_for_the_first_given_back(connect):
    lease = await Lease.open(connect, 1, 2)
    first, second = await lease.acquire(), await lease.acquire()
    waiting = [asyncio.create_task(lease.acquire()) for _ in range(2)]
    await asyncio.sleep(0)  # both queued, in order
    await lease.release(second)
    assert await waiting[0] is second
    assert not waiting[1].done()
    await lease.release(first)
    assert await waiting[1] is first
    assert len(connect.opened) == 2
    for conn in (first, second):
        await lease.release(conn)
    await lease.close()


async def test_a_wait_past_its_timeout_raises_and_takes_nothing(connect):
    lease = await Lease.open(connect, 1, 1)
    held = await lease.acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await lease.acquire()
    await lease.release(held)
    assert (lease.get_size(), lease.get_idle_size()) == (1, 1)
    assert await lease.acquire() is held  # the timed-out waiter did not take it
    await lease.release(held)
    await lease.close()


async def test_a_connection_the_server_closed_is_replaced(connect):
    lease = await Lease.open(connect, 1, 1)
    pid = await backend_pid(lease)
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    conn = await lease.acquire()
    # The driver may see the close at once (acquire then skips that one) or
    # only on the next statement, which fails: the service discards a
    # connection that met such an error (service.db).
    failed = None
    try:
        await conn.fetchval("SELECT 1")
    except Exception as exc:  # the driver's kind varies
        failed = exc
    if failed is not None:
        assert _unknown_state(failed) or conn.is_closed(), failed
        await lease.release(conn, discard=_unknown_state(failed))
        assert lease.get_size() == 0  # its slot is free again
        conn = await lease.acquire()
    assert await conn.fetchval("SELECT 1") == 1
    assert conn.get_server_pid() != pid
    await lease.release(conn)
    assert lease.get_size() == 1
    await lease.close()


async def test_a_discarded_connection_is_closed_and_its_slot_goes_to_a_waiter(connect):
    lease = await Lease.open(connect, 1, 1)
    held = await lease.acquire()
    waiter = asyncio.create_task(lease.acquire())
    await asyncio.sleep(0)
    await lease.release(held, discard=True)  # e.g. its statement timed out
    fresh = await waiter
    assert held.is_closed()
    assert fresh is not held
    assert await fresh.fetchval("SELECT 1") == 1
    await lease.release(fresh)
    assert lease.get_size() == 1
    await lease.close()


async def test_a_transaction_left_open_is_rolled_back(connect):
    lease = await Lease.open(connect, 1, 1)
    conn = await lease.acquire()
    await conn.execute("BEGIN; CREATE TEMPORARY TABLE left_open (x int)")
    await lease.release(conn)
    again = await lease.acquire()
    assert again is conn
    assert not again.is_in_transaction()
    assert await again.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
    await lease.release(again)
    await lease.close()


async def test_idle_connections_close_down_to_min_size_oldest_first(connect, monkeypatch):
    lease = await Lease.open(connect, 1, 3)
    held = [await lease.acquire() for _ in range(3)]
    for conn in held:
        await lease.release(conn)
    lease.sweep(time.monotonic())  # none idle long enough yet
    assert lease.get_size() == 3
    lease.sweep(time.monotonic() + lease_module.MAX_IDLE_SECONDS)
    assert (lease.get_size(), lease.get_idle_size()) == (1, 1)
    assert [c.is_closed() for c in held] == [True, True, False]  # the newest is kept
    await lease.close()


async def test_close_waits_for_what_is_lent_and_refuses_new_lends(connect):
    lease = await Lease.open(connect, 1, 2)
    held = await lease.acquire()
    waiter = asyncio.create_task(lease.acquire())
    other = await lease.acquire()
    closing = asyncio.create_task(lease.close())
    await asyncio.sleep(0)
    assert not closing.done()
    with pytest.raises(asyncpg.InterfaceError):
        await waiter
    with pytest.raises(asyncpg.InterfaceError):
        await lease.acquire()
    assert await held.fetchval("SELECT 1") == 1  # still usable until given back
    await lease.release(held)
    assert not closing.done()
    await lease.release(other)
    await asyncio.wait_for(closing, 5)
    assert held.is_closed()
    assert other.is_closed()


async def test_terminate_closes_every_connection_lent_or_not(connect):
    lease = await Lease.open(connect, 2, 2)
    held = await lease.acquire()
    lease.terminate()
    assert all(conn.is_closed() for conn in connect.opened)
    assert held.is_closed()


async def test_a_failed_connect_frees_its_slot(migrated_database):
    attempts = []

    async def flaky() -> asyncpg.Connection:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionRefusedError("down")
        return await asyncpg.connect(migrated_database)

    lease = await Lease.open(flaky, 0, 1)
    with pytest.raises(ConnectionRefusedError):
        await lease.acquire()
    assert lease.get_size() == 0
    conn = await lease.acquire()  # the database is back
    assert await conn.fetchval("SELECT 1") == 1
    await lease.release(conn)
    await lease.close()


async def test_a_statement_that_timed_out_is_stopped_before_its_connection_is_reused(settings):
    # asyncpg cancels a statement past its timeout; the release waits until
    # the server has stopped it (as asyncpg's Pool did), so the 503 comes
    # after, and the connection is lent again, not thrown away.
    from service.db import Database, load_queries
    from service.settings import DEFAULT_SQL_DIR

    db = Database(settings, load_queries(DEFAULT_SQL_DIR / "queries"))
    await db.open()
    pid = await backend_pid(db.pool)
    with pytest.raises(TimeoutError):
        async with db.transaction() as conn:
            await conn.execute("SELECT pg_sleep(30)", timeout=0.1)
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        running = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid
        )
    finally:
        await admin.close()
    assert running == 0
    assert not conn.is_closed()
    assert await backend_pid(db.pool) == pid
    await db.close()
