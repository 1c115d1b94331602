"""One user cannot take the database from the others (issue 13): a user
holds at most DB_MAX_PER_USER pool connections; their excess waits a moment
for one of their own and then answers 429, while everyone else is served.
A full pool is counted as `pool_exhausted`, apart from an outage."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import keys
from service.app import create_app
from service.db import UserShares
from service.errors import TooManyInFlight
from tests.conftest import make_settings
from tests.helpers import DatabaseLock, bearer, make_task, problem, user_token
from tests.launcher import wait_until_async

# Longer than any test below holds its row lock: the stuck requests must be
# released by the test, never by the statement timeout.
HOLD_LIMIT = "60"
# The test's row locks: requests writing those tasks wait on them.
FOR_UPDATE = "SELECT 1 FROM tasks WHERE id = any($1::uuid[]) FOR UPDATE"


async def samples(client) -> dict:
    text = await (await client.get("/metrics")).text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def send(client, method: str, path: str, token: str, body: dict):
    """One request; its status, headers and body, read in full."""
    async with client.request(method, path, json=body, headers=bearer(token)) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_one_users_stuck_requests_get_429_while_another_user_is_served(
    aiohttp_client, migrated_database, caplog
):
    settings = make_settings(
        DATABASE_URL=migrated_database,
        DB_POOL_MAX="8",
        DB_MAX_PER_USER="2",
        DB_STATEMENT_TIMEOUT=HOLD_LIMIT,
    )
    client = await aiohttp_client(create_app(settings))
    ann, bob = await user_token(client), await user_token(client, "bob@example.com")
    ann_task = (await make_task(client, ann.token)).task["id"]
    bob_task = (await make_task(client, bob.token)).task["id"]
    refused_before = (await samples(client)).get(("todo_db_user_share_refused_total", ()), 0)

    async with DatabaseLock(migrated_database) as lock:
        await lock.hold(FOR_UPDATE, [ann_task])
        path = f"/api/tasks/{ann_task}"
        writes = [
            asyncio.create_task(send(client, method, path, ann.token, {"title": f"edit {i}"}))
            for i, method in enumerate(["PATCH", "PUT"] * 12)
        ]
        # Ann's share (2) is stuck on the lock; nothing announces it: poll.
        await wait_until_async(
            lambda: _at_least(lock.waiting(), 2), "ann's requests never reached the lock", 10
        )

        # Bob is served at once, from the connections Ann cannot take.
        resp = await client.get(f"/api/tasks/{bob_task}", headers=bearer(bob.token))
        assert resp.status == 200, await resp.text()
        assert await lock.waiting() == 2  # still held: Ann holds her share and no more

        # Ann's other 22 answer 429, while her two are still stuck.
        await wait_until_async(
            lambda: _done(writes, 22), "ann's excess requests were never answered", 10
        )
        answered = [w.result() for w in writes if w.done()]
        assert [status for status, _, _ in answered] == [429] * 22
        for _, headers, body in answered:
            assert int(headers["Retry-After"]) >= 1
            assert b"/problems/too-many-in-flight" in body
        assert sum(not w.done() for w in writes) == 2
        await lock.release()

    # Released, the two held ones complete.
    results = await asyncio.gather(*writes)
    assert sorted(status for status, _, _ in results) == [200] * 2 + [429] * 22
    db = client.server.app[keys.DB]
    assert db.shares.held == {}  # nothing kept for an idle user
    refused = (await samples(client))[("todo_db_user_share_refused_total", ())]
    assert refused - refused_before == 22
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "in flight" in r.message]
    assert len(warned) == 22  # every 429 is a WARNING line
    assert all(ann.id in r.message for r in warned)


async def _at_least(count, n: int) -> bool:
    return await count >= n


async def _done(tasks: list[asyncio.Task], n: int) -> bool:
    return sum(t.done() for t in tasks) >= n


async def test_a_full_pool_is_counted_apart_from_an_outage(aiohttp_client, migrated_database):
    # Each user within their share; together they fill the pool.
    settings = make_settings(
        DATABASE_URL=migrated_database,
        DB_POOL_MAX="2",
        DB_MAX_PER_USER="2",
        DB_CONNECT_TIMEOUT="0.5",
        DB_STATEMENT_TIMEOUT=HOLD_LIMIT,
    )
    client = await aiohttp_client(create_app(settings))
    ann, bob, cid = [await user_token(client, f"{n}@example.com") for n in ("ann", "bob", "cid")]
    tasks = {u: (await make_task(client, u.token)).task["id"] for u in (ann, bob)}
    before = await samples(client)

    async with DatabaseLock(migrated_database) as lock:
        await lock.hold(FOR_UPDATE, list(tasks.values()))
        stuck = [
            asyncio.create_task(send(client, "PATCH", f"/api/tasks/{t}", u.token, {"title": "x"}))
            for u, t in tasks.items()
        ]
        await wait_until_async(
            lambda: _at_least(lock.waiting(), 2), "the writes never reached the lock", 10
        )
        body = await problem(await client.get("/api/tasks", headers=bearer(cid.token)), 503)
        assert body["type"] == "/problems/database-unavailable"
        await lock.release()
    assert [status for status, _, _ in await asyncio.gather(*stuck)] == [200, 200]

    after = await samples(client)

    def grew(kind: str) -> float:
        key = ("todo_db_errors_total", (("kind", kind),))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("pool_exhausted") == 1
    assert grew("unavailable") == 0
    waits = after[("todo_db_pool_wait_seconds_count", ())]
    assert waits >= 1

    # Every connection came back: requests one at a time find one free
    # again, without the waiting path (and its metric).
    for _ in range(5):
        assert (await client.get("/api/tasks", headers=bearer(cid.token))).status == 200
    assert (await samples(client))[("todo_db_pool_wait_seconds_count", ())] == waits


# --- the share itself, without a database --------------------------------------


async def test_a_share_passes_to_the_users_next_waiter_first_come_first_served():
    shares, ann = UserShares(share=1, wait=30), uuid.uuid4()
    assert shares.try_take(ann)
    assert not shares.try_take(ann)
    first = asyncio.create_task(shares.wait_for_one(ann))
    second = asyncio.create_task(shares.wait_for_one(ann))
    await asyncio.sleep(0)  # one turn of the loop: both run to their wait
    shares.give_back(ann)
    await first
    assert not second.done()
    shares.give_back(ann)
    await second
    shares.give_back(ann)
    assert shares.held == {}


async def test_a_waiter_gives_up_with_429_and_leaves_nothing_behind():
    shares, ann = UserShares(share=1, wait=0.01), uuid.uuid4()
    assert shares.try_take(ann)
    with pytest.raises(TooManyInFlight):
        await shares.wait_for_one(ann)
    cancelled = asyncio.create_task(shares.wait_for_one(ann))
    await asyncio.sleep(0)  # one turn of the loop: it runs to its wait
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    shares.give_back(ann)
    assert shares.held == {}
    assert shares.waiting == {}
