"""Searches are bounded (issue 25, API.md "Limits"): a `q` listing runs at
most SEARCH_TIMEOUT (past it a 422 search-too-broad), a user runs one
search at a time (the next waits briefly, then 429) and a process runs at
most SEARCH_CONCURRENCY at once (the rest wait in turn, then 503).

A search is held inside PostgreSQL by the test's own ACCESS EXCLUSIVE lock
on tasks, so the interleaving is the test's, never the clock's."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from service import keys
from service.app import create_app
from tests.conftest import make_settings
from tests.helpers import (
    ATTACK_Q,
    TASKS,
    DatabaseLock,
    bearer,
    make_task,
    problem,
    seed_attack,
    user_token,
)
from tests.launcher import wait_until_async

# Longer than any test holds its lock: a held search ends when the test
# releases it, never by a timeout.
# A user's share of the pool above one, so a held search does not hold
# their other requests too.
HOLD = {"SEARCH_TIMEOUT": "60s", "DB_STATEMENT_TIMEOUT": "120", "DB_MAX_PER_USER": "3"}


async def app_client(aiohttp_client, url: str, **settings: str):
    return await aiohttp_client(create_app(make_settings(DATABASE_URL=url, **settings)))


def table_lock(url: str) -> DatabaseLock:
    """ACCESS EXCLUSIVE on tasks: every statement reading tasks waits on it."""
    return DatabaseLock(url, "LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")


async def search(client, token: str, q: str = "milk"):
    """One search; its status, headers and body, read in full."""
    async with client.get(f"{TASKS}?q={q}", headers=bearer(token)) as resp:
        return resp.status, resp.headers, await resp.read()


async def assert_refused(client, token: str, status: int, problem_type: str) -> None:
    """A search of `token`'s answered `status` with `problem_type` and a Retry-After."""
    got, headers, body = await search(client, token)
    assert got == status, body
    assert problem_type.encode() in body
    assert int(headers["Retry-After"]) >= 1


async def _reaches(count, n: int) -> bool:
    return await count == n


async def held_search(client, lock: DatabaseLock, token: str) -> asyncio.Task:
    """A search of `token`'s, started and seen waiting on `lock` in PostgreSQL."""
    task = asyncio.create_task(search(client, token))
    await wait_until_async(
        lambda: _reaches(lock.waiting(), 1), "the search never reached the lock", 10
    )
    return task


@pytest.fixture
async def one_slot(aiohttp_client, migrated_database):
    """SEARCH_CONCURRENCY=1 and searches held: the client, Ann, Bob, the app's DB."""
    client = await app_client(aiohttp_client, migrated_database, SEARCH_CONCURRENCY="1", **HOLD)
    ann, bob = await user_token(client), await user_token(client, "bob@example.com")
    return client, ann, bob, client.server.app[keys.DB]


async def test_a_search_built_to_be_slow_is_a_422_and_the_connection_serves_on(
    aiohttp_client, migrated_database
):
    # One pool connection: whatever the cancelled search left, the next
    # requests meet it.
    client = await app_client(
        aiohttp_client, migrated_database, SEARCH_TIMEOUT="5ms", DB_POOL_MAX="1"
    )
    ann = await user_token(client)
    await make_task(client, ann.token, title="buy milk")
    seed_attack(migrated_database, ann.id)

    body = await problem(await client.get(f"{TASKS}?q={ATTACK_Q}", headers=bearer(ann.token)), 422)
    assert body["type"] == "/problems/search-too-broad"
    assert "narrow" in body["detail"]
    assert list(body["errors"]) == ["q"]

    # The same connection serves on: a plain page, the user's other reads.
    for _ in range(3):
        resp = await client.get(f"{TASKS}?limit=20", headers=bearer(ann.token))
        assert resp.status == 200, await resp.text()
        assert len(await resp.json()) == 20
    with psycopg.connect(migrated_database) as conn:
        stuck = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        ).fetchone()[0]
    assert stuck == 0
    db = client.server.app[keys.DB]
    assert (db.search_turns.held, db.search_slots.held) == ({}, {})


async def test_a_second_search_of_the_same_user_is_a_429_while_the_first_runs(
    aiohttp_client, migrated_database
):
    client = await app_client(aiohttp_client, migrated_database, **HOLD)
    ann = await user_token(client)
    await make_task(client, ann.token, title="buy milk")

    async with table_lock(migrated_database) as lock:
        first = await held_search(client, lock, ann.token)
        await assert_refused(client, ann.token, 429, "/problems/search-in-progress")
        # A plain listing of the same user is not a search: it waits on the
        # lock like any read, not on the search turn.
        plain = asyncio.create_task(client.get(TASKS, headers=bearer(ann.token)))
        await wait_until_async(
            lambda: _reaches(lock.waiting(), 2), "the plain listing never reached the lock", 10
        )
        assert not first.done()
        await lock.release()
    status, _, body = await first
    assert status == 200, body
    assert b"buy milk" in body
    assert (await plain).status == 200
    # The turn came back: the user searches again.
    assert (await search(client, ann.token))[0] == 200


async def test_with_search_concurrency_1_two_users_never_search_at_once(
    one_slot, aiohttp_client, migrated_database
):
    client, ann, bob, db = one_slot

    async with table_lock(migrated_database) as lock:
        held = await held_search(client, lock, ann.token)
        # Bob's search waits for the one slot, outside PostgreSQL, then
        # gives up with 503; it never ran beside Ann's.
        await assert_refused(client, bob.token, 503, "/problems/searches-busy")
        assert await lock.waiting() == 1
        # Bob's next one queues; released, the two run one after the other.
        queued = asyncio.create_task(search(client, bob.token))
        await wait_until_async(
            lambda: _queued(db), "bob's second search never queued for the slot", 10
        )
        assert await lock.waiting() == 1
        await lock.release()
    assert [(await t)[0] for t in (held, queued)] == [200, 200]
    assert (db.search_slots.held, db.search_slots.waiting) == ({}, {})

    # The same observation sees two searches at once where two may run.
    client = await app_client(aiohttp_client, migrated_database, SEARCH_CONCURRENCY="2", **HOLD)
    async with table_lock(migrated_database) as lock:
        both = [asyncio.create_task(search(client, u.token)) for u in (ann, bob)]
        await wait_until_async(
            lambda: _reaches(lock.waiting(), 2), "the two searches never ran at once", 10
        )
        await lock.release()
    assert [(await t)[0] for t in both] == [200, 200]


async def _queued(db) -> bool:
    return sum(len(q) for q in db.search_slots.waiting.values()) == 1


async def test_a_waiting_search_its_client_abandons_leaves_no_hole(one_slot, migrated_database):
    client, ann, bob, db = one_slot

    async with table_lock(migrated_database) as lock:
        held = await held_search(client, lock, ann.token)
        # Bob's client gives up while his search waits for the slot.
        abandoned = asyncio.create_task(search(client, bob.token))
        await wait_until_async(lambda: _queued(db), "bob's search never queued", 10)
        abandoned.cancel()

        # And a waiter cancelled inside the service (as at shutdown): Ann's
        # own, behind her held search.
        async def inside() -> None:
            async with db.search(uuid.UUID(ann.id)):
                pass

        cancelled = asyncio.create_task(inside())
        await wait_until_async(lambda: _turn_waiters(db, ann.id), "it never waited", 10)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await lock.waiting() == 1
        await lock.release()
    assert (await held)[0] == 200
    await wait_until_async(lambda: _idle(db), "a search turn or slot was kept", 10)

    # No hole either way: Bob searches again, and there is still one slot.
    assert (await search(client, bob.token))[0] == 200
    async with table_lock(migrated_database) as lock:
        held = await held_search(client, lock, ann.token)
        assert (await search(client, bob.token))[0] == 503
        await lock.release()
    assert (await held)[0] == 200


async def _turn_waiters(db, user_id: str) -> bool:
    return len(db.search_turns.waiting.get(uuid.UUID(user_id), ())) == 1


async def _idle(db) -> bool:
    return not (
        db.search_turns.held
        or db.search_turns.waiting
        or db.search_slots.held
        or db.search_slots.waiting
    )
