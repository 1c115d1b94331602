"""MAX_TASKS_PER_USER (issue 13): one more task than the limit is a 403 of
type task-limit-reached, deleting one frees a slot, parallel creates at the
limit let exactly one through, and the account's task_counts stay equal to
its count(*)."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg

from service import keys
from service.app import create_app
from tests.conftest import make_settings
from tests.helpers import TASKS, bearer, make_task, problem, user_token
from tests.launcher import wait_until_async

LIMIT = 3


def counted(url: str, user_id: str) -> tuple[int, int]:
    """(the account's task_counts summed over its stripes, count(*) of its tasks)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT coalesce(sum(task_total), 0) FROM task_counts WHERE user_id = %s), "
            "       (SELECT count(*) FROM tasks WHERE user_id = %s)",
            (user_id, user_id),
        ).fetchone()


async def test_the_limit_is_a_403_and_deleting_a_task_frees_a_slot(
    aiohttp_client, migrated_database
):
    settings = make_settings(DATABASE_URL=migrated_database, MAX_TASKS_PER_USER=str(LIMIT))
    client = await aiohttp_client(create_app(settings))
    ann, bob = await user_token(client), await user_token(client, "bob@example.com")
    made = [await make_task(client, ann.token, title=f"t{i}") for i in range(LIMIT)]
    assert counted(migrated_database, ann.id) == (LIMIT, LIMIT)

    resp = await client.post(TASKS, json={"title": "one more"}, headers=bearer(ann.token))
    body = await problem(resp, 403)
    assert body["type"] == "/problems/task-limit-reached"
    assert body["limit"] == LIMIT
    assert "delete some" in body["detail"]
    await make_task(client, bob.token)  # a limit per account, not for everyone

    first = made[0].task["id"]
    resp = await client.delete(f"{TASKS}/{first}", headers=bearer(ann.token))
    assert resp.status == 204
    resp = await client.delete(f"{TASKS}/{first}", headers=bearer(ann.token))
    assert resp.status == 404  # gone already: counted once
    assert counted(migrated_database, ann.id) == (LIMIT - 1, LIMIT - 1)
    await make_task(client, ann.token, title="in the freed slot")
    assert counted(migrated_database, ann.id) == (LIMIT, LIMIT)
    assert counted(migrated_database, bob.id) == (1, 1)


async def test_parallel_creates_at_the_limit_let_exactly_one_through(
    aiohttp_client, migrated_database
):
    parallel = 16
    settings = make_settings(
        DATABASE_URL=migrated_database,
        MAX_TASKS_PER_USER=str(LIMIT),
        DB_POOL_MAX=str(parallel),
        DB_MAX_PER_USER=str(parallel),  # all of them in the database at once
        DB_STATEMENT_TIMEOUT="60",
    )
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)
    for i in range(LIMIT - 1):
        await make_task(client, ann.token, title=f"t{i}")

    # The test holds the account's row (and, once made, its counters), so
    # all creates queue on it and race for the one slot left the moment it
    # is released.
    conn = await asyncpg.connect(migrated_database)
    observer = await asyncpg.connect(migrated_database)  # outside conn's snapshot
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", ann.id)
            await conn.execute("SELECT 1 FROM task_counts WHERE user_id = $1 FOR UPDATE", ann.id)

            async def create(i: int) -> int:
                resp = await client.post(
                    TASKS, json={"title": f"race {i}"}, headers=bearer(ann.token)
                )
                return resp.status

            creates = [asyncio.create_task(create(i)) for i in range(parallel)]

            async def all_waiting() -> bool:
                return parallel <= await observer.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )

            await wait_until_async(all_waiting, "the creates never queued on the account", 10)
        statuses = await asyncio.gather(*creates)
    finally:
        await conn.close()
        await observer.close()
    assert sorted(statuses) == [201] + [403] * (parallel - 1)
    assert counted(migrated_database, ann.id) == (LIMIT, LIMIT)


async def test_a_gone_account_is_still_a_401_not_the_limit(aiohttp_client, migrated_database):
    settings = make_settings(DATABASE_URL=migrated_database, MAX_TASKS_PER_USER="1")
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)
    await make_task(client, ann.token)
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (ann.id,))
    resp = await client.post(TASKS, json={"title": "x"}, headers=bearer(ann.token))
    assert (await problem(resp, 401))["type"] == "/problems/unauthorized"


async def test_bursts_of_parallel_creates_stop_exactly_at_the_limit(
    aiohttp_client, migrated_database
):
    # No lock held by the test: the creates race as they come, on the fast
    # path (free stripes), making stripes and, at the end, on the exact path.
    limit, parallel = 70, 16
    settings = make_settings(
        DATABASE_URL=migrated_database,
        MAX_TASKS_PER_USER=str(limit),
        DB_POOL_MAX=str(parallel),
        DB_MAX_PER_USER=str(parallel),
    )
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)

    async def create(i: int) -> int:
        resp = await client.post(TASKS, json={"title": f"burst {i}"}, headers=bearer(ann.token))
        return resp.status

    statuses = []
    for burst in range(6):  # 96 creates for 70 slots
        statuses += await asyncio.gather(*(create(burst * parallel + i) for i in range(parallel)))
    assert statuses.count(201) == limit
    assert statuses.count(403) == 6 * parallel - limit
    assert counted(migrated_database, ann.id) == (limit, limit)


async def test_creates_on_one_connection_count_in_that_connections_stripe(
    aiohttp_client, migrated_database
):
    # One pool connection: every create runs on one server process, so all
    # are counted in its own stripe (pg_backend_pid() % 64), one row.
    settings = make_settings(
        DATABASE_URL=migrated_database, DB_POOL_MIN="1", DB_POOL_MAX="1", DB_MAX_PER_USER="1"
    )
    app = create_app(settings)
    client = await aiohttp_client(app)
    ann = await user_token(client)
    for i in range(5):
        await make_task(client, ann.token, title=f"t{i}")
    async with app[keys.DB].pool.acquire() as conn:
        own = await conn.fetchval("SELECT pg_backend_pid() % 64")
    with psycopg.connect(migrated_database) as conn:
        stripes = conn.execute(
            "SELECT stripe, task_total FROM task_counts WHERE user_id = %s", (ann.id,)
        ).fetchall()
    assert stripes == [(own, 5)]
