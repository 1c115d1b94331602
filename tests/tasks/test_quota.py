"""MAX_TASKS_PER_USER: one more task than the limit is a 403 of type
task-limit-reached, deleting one frees a slot, parallel creates at the limit
let exactly one through, and the account's task_totals row stays equal to
its count(*) whoever adds or removes tasks (the service, a DBA's SQL)."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import pytest

from service.app import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, TASKS, bearer, make_task, problem, user_token
from tests.launcher import wait_until_async

LIMIT = 3


def counted(url: str, user_id: str) -> tuple[int, int]:
    """(the account's task_totals row, count(*) of its tasks)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT task_total FROM task_totals WHERE user_id = %s), "
            "       (SELECT count(*) FROM tasks WHERE user_id = %s)",
            (user_id, user_id),
        ).fetchone()


@pytest.fixture
async def accounts(aiohttp_client, migrated_database):
    """A client with MAX_TASKS_PER_USER=LIMIT, and two accounts on it: ann, bob."""
    settings = make_settings(DATABASE_URL=migrated_database, MAX_TASKS_PER_USER=str(LIMIT))
    client = await aiohttp_client(create_app(settings))
    return client, await user_token(client), await user_token(client, "bob@example.com")


def dba(url: str, sql: str, *params) -> None:
    """A statement run the way a DBA runs one: straight on the database."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


async def test_the_limit_is_a_403_and_deleting_a_task_frees_a_slot(accounts, migrated_database):
    client, ann, bob = accounts
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

    # The test holds the account's counter row, so all creates queue on it
    # and race for the one slot left the moment it is released.
    conn = await asyncpg.connect(migrated_database)
    observer = await asyncpg.connect(migrated_database)  # outside conn's snapshot
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM task_totals WHERE user_id = $1 FOR UPDATE", ann.id)

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
    # No lock held by the test: the creates race as they come.
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


async def test_a_dbas_insert_counts_and_the_service_refuses_at_the_limit(
    accounts, migrated_database
):
    client, ann, bob = accounts
    await make_task(client, ann.token, title="by the service")
    # One import for two accounts: ann to one below the limit, bob to it.
    dba(
        migrated_database,
        "INSERT INTO tasks (user_id, title) "
        "SELECT %s::uuid, 'imported ' || g FROM generate_series(1, %s) AS g "
        "UNION ALL SELECT %s::uuid, 'imported ' || g FROM generate_series(1, %s) AS g",
        ann.id,
        LIMIT - 2,
        bob.id,
        LIMIT,
    )
    assert counted(migrated_database, ann.id) == (LIMIT - 1, LIMIT - 1)
    assert counted(migrated_database, bob.id) == (LIMIT, LIMIT)

    await make_task(client, ann.token, title="the last one")
    for user in (ann, bob):
        resp = await client.post(TASKS, json={"title": "one more"}, headers=bearer(user.token))
        assert (await problem(resp, 403))["type"] == "/problems/task-limit-reached"
    assert counted(migrated_database, ann.id) == (LIMIT, LIMIT)


async def test_a_dbas_delete_uncounts_and_the_service_accepts_again(accounts, migrated_database):
    client, ann, bob = accounts
    for user in (ann, bob):
        for i in range(LIMIT):
            await make_task(client, user.token, title=f"t{i}")
    # One clean-up across two accounts: two of ann's tasks, one of bob's.
    dba(
        migrated_database,
        "DELETE FROM tasks WHERE id IN ("
        "(SELECT id FROM tasks WHERE user_id = %s ORDER BY created_at LIMIT 2) "
        "UNION ALL (SELECT id FROM tasks WHERE user_id = %s LIMIT 1))",
        ann.id,
        bob.id,
    )
    assert counted(migrated_database, ann.id) == (LIMIT - 2, LIMIT - 2)
    assert counted(migrated_database, bob.id) == (LIMIT - 1, LIMIT - 1)

    for user in (ann, ann, bob):
        await make_task(client, user.token, title="in a slot the DBA freed")
    resp = await client.post(TASKS, json={"title": "one more"}, headers=bearer(ann.token))
    await problem(resp, 403)
    assert counted(migrated_database, ann.id) == (LIMIT, LIMIT)
    assert counted(migrated_database, bob.id) == (LIMIT, LIMIT)


async def test_a_task_moved_or_truncated_away_by_a_dba_is_counted_where_it_went(
    accounts, migrated_database
):
    client, ann, bob = accounts
    for i in range(LIMIT):
        await make_task(client, ann.token, title=f"t{i}")
    dba(
        migrated_database,
        "UPDATE tasks SET user_id = %s WHERE id = "
        "(SELECT id FROM tasks WHERE user_id = %s ORDER BY created_at LIMIT 1)",
        bob.id,
        ann.id,
    )
    assert counted(migrated_database, ann.id) == (LIMIT - 1, LIMIT - 1)
    assert counted(migrated_database, bob.id) == (1, 1)
    await make_task(client, ann.token, title="where the moved one was")

    dba(migrated_database, "TRUNCATE tasks")
    assert counted(migrated_database, ann.id) == (0, 0)
    assert counted(migrated_database, bob.id) == (0, 0)
    for i in range(LIMIT):
        await make_task(client, ann.token, title=f"again {i}")


async def test_deleting_an_account_leaves_no_counter_and_no_other_changes(
    accounts, migrated_database
):
    client, ann, bob = accounts
    for user in (ann, bob):
        for i in range(LIMIT - 1):
            await make_task(client, user.token, title=f"t{i}")
    resp = await client.request(
        "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=bearer(ann.token)
    )
    assert resp.status == 204
    with psycopg.connect(migrated_database) as conn:
        sql = "SELECT count(*) FROM task_totals WHERE user_id = %s"
        assert conn.execute(sql, (ann.id,)).fetchone() == (0,)
    assert counted(migrated_database, bob.id) == (LIMIT - 1, LIMIT - 1)
    await make_task(client, bob.token, title="bob's last")
    await problem(await client.post(TASKS, json={"title": "x"}, headers=bearer(bob.token)), 403)
