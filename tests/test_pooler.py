"""Through Debian's PgBouncer (1.18: no prepared-statement support) in
transaction mode with its defaults, in front of a PostgreSQL with SCRAM
passwords and TLS: what Neon's -pooler endpoint is."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from service.app import create_app
from service.migrations import migrate, rollback
from tests.conftest import MIGRATIONS_DIR, make_settings
from tests.events.test_events import next_event
from tests.helpers import ATTACK_Q, bearer, problem, seed_attack, signup

COUNT = len([p for p in MIGRATIONS_DIR.glob("*.sql") if not p.name.endswith(".rollback.sql")])


@pytest.fixture
def database(scram_cluster):
    return scram_cluster.create_database()


@pytest.fixture
def pooled_url(pgbouncer, database):
    return pgbouncer.url(database)


@pytest.fixture
def migrated_pooled_url(pooled_url):
    migrate(pooled_url, MIGRATIONS_DIR)
    return pooled_url


async def pooled_client(aiohttp_client, url: str, **settings: str):
    return await aiohttp_client(
        create_app(make_settings(DATABASE_URL=url, DATABASE_POOLER="transaction", **settings))
    )


def test_migrate_rollback_and_migrate_again_through_the_pooler(pooled_url, scram_cluster, database):
    first = migrate(pooled_url, MIGRATIONS_DIR)
    assert len(first) == COUNT
    assert migrate(pooled_url, MIGRATIONS_DIR) == []
    assert rollback(pooled_url, MIGRATIONS_DIR, count=COUNT) == list(reversed(first))
    assert migrate(pooled_url, MIGRATIONS_DIR) == first
    with psycopg.connect(scram_cluster.url(database)) as conn:
        applied = conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0]
        held = conn.execute("SELECT count(*) FROM yoyo_lock").fetchone()[0]
    assert (applied, held) == (COUNT, 0)  # every step recorded, no lock left behind


async def test_mixed_traffic_through_the_pooler_has_no_errors(aiohttp_client, migrated_pooled_url):
    # Each user's three sessions may hold the whole pool: with the default
    # share (one connection a user) a busy machine turns their queue into
    # 429s, which test_database_share.py tests; here only the pooler is.
    client = await pooled_client(aiohttp_client, migrated_pooled_url, DB_MAX_PER_USER="5")
    resp = await client.get("/ready")
    assert resp.status == 200, await resp.text()
    tokens = [(await signup(client, email=f"u{i}@example.com"))["access_token"] for i in range(3)]

    async def session(token: str) -> list[int]:
        statuses = []
        for i in range(15):
            resp = await client.post("/api/tasks", json={"title": f"t{i}"}, headers=bearer(token))
            statuses.append(resp.status)
            task = await resp.json()
            for method, path, body in [
                ("GET", f"/api/tasks/{task['id']}", None),
                ("PATCH", f"/api/tasks/{task['id']}", {"completed": True}),
                ("GET", "/api/tasks?limit=5", None),
                ("GET", f"/api/tasks/{uuid.uuid4()}", None),  # a 404
            ]:
                resp = await client.request(method, path, json=body, headers=bearer(token))
                statuses.append(resp.status)
        return statuses

    results = await asyncio.gather(*(session(t) for t in tokens * 3))
    seen = {s for statuses in results for s in statuses}
    assert seen <= {200, 201, 404}, seen
    assert 404 in seen
    assert 201 in seen


async def test_a_statement_stuck_on_a_lock_is_503_and_the_pooler_recovers(
    aiohttp_client, migrated_pooled_url, scram_cluster, database
):
    client = await pooled_client(aiohttp_client, migrated_pooled_url, DB_STATEMENT_TIMEOUT="1")
    token = (await signup(client))["access_token"]
    resp = await client.post("/api/tasks", json={"title": "t"}, headers=bearer(token))
    task = await resp.json()
    with psycopg.connect(scram_cluster.url(database)) as locker:
        locker.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task["id"],))
        resp = await client.patch(
            f"/api/tasks/{task['id']}", json={"title": "u"}, headers=bearer(token)
        )
        await problem(resp, 503)
        assert "Retry-After" in resp.headers
        # The statement was cancelled on the server, not just abandoned: no
        # backend waits for the lock any more, though it is still held.
        waiting = locker.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()[0]
        assert waiting == 0
    # The lock is gone; the same pooled connections serve again.
    for _ in range(10):
        resp = await client.patch(
            f"/api/tasks/{task['id']}", json={"title": "v"}, headers=bearer(token)
        )
        assert resp.status == 200, await resp.text()


async def test_a_search_past_search_timeout_is_a_422_through_the_pooler(
    aiohttp_client, migrated_pooled_url, scram_cluster, database
):
    client = await pooled_client(
        aiohttp_client, migrated_pooled_url, SEARCH_TIMEOUT="5ms", DB_POOL_MAX="1"
    )
    ann = await signup(client)
    seed_attack(scram_cluster.url(database), ann["user"]["id"])
    token = ann["access_token"]
    body = await problem(await client.get(f"/api/tasks?q={ATTACK_Q}", headers=bearer(token)), 422)
    assert body["type"] == "/problems/search-too-broad"
    # The pooled connection serves on, at the service's own timeout: the
    # search's SET LOCAL ended with its transaction.
    for _ in range(5):
        resp = await client.get("/api/tasks?limit=20", headers=bearer(token))
        assert resp.status == 200, await resp.text()
    with psycopg.connect(migrated_pooled_url, autocommit=True) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] != "5ms"


async def test_a_postgresql_restart_mid_traffic_loses_nothing(
    aiohttp_client, migrated_pooled_url, scram_cluster, database
):
    client = await pooled_client(aiohttp_client, migrated_pooled_url)
    token = (await signup(client))["access_token"]
    acknowledged: list[str] = []
    statuses: list[int] = []
    flowing, restarted = asyncio.Event(), asyncio.Event()

    async def create(n: int) -> int:
        resp = await client.post("/api/tasks", json={"title": f"t{n}"}, headers=bearer(token))
        statuses.append(resp.status)
        if resp.status == 201:
            acknowledged.append((await resp.json())["id"])
        return resp.status

    async def traffic() -> None:
        n = 0
        while not restarted.is_set():
            n += 1
            await create(n)
            if n == 10:
                flowing.set()
        # PgBouncer waits server_login_retry (15 s by default) before it
        # logs in again: until then, 503s. Then 10 writes in a row succeed.
        recovered = 0
        for _ in range(600):
            n += 1
            recovered = recovered + 1 if await create(n) == 201 else 0
            if recovered == 10:
                return
            if recovered == 0:
                await asyncio.sleep(0.1)  # PgBouncer's next login is announced nowhere
        raise AssertionError(f"no recovery after the restart: {statuses[-20:]}")

    async def restart() -> None:
        await flowing.wait()
        await asyncio.to_thread(scram_cluster.restart)
        restarted.set()

    await asyncio.gather(traffic(), restart())
    assert set(statuses) <= {201, 503}, statuses
    assert 503 in statuses  # the restart was seen
    with psycopg.connect(scram_cluster.url(database)) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM tasks").fetchall()}
    assert set(acknowledged) <= stored


async def test_without_the_pooler_setting_the_refusal_is_explained(
    aiohttp_client, migrated_pooled_url
):
    # Startup parameters a pooler refuses: /ready says the database refused
    # the connection instead of failing silently.
    client = await aiohttp_client(
        create_app(make_settings(DATABASE_URL=migrated_pooled_url, DATABASE_POOLER="none"))
    )
    body = await problem(await client.get("/ready"), 503)
    assert "refused" in body["detail"]


async def test_an_idempotent_retry_is_replayed_through_the_pooler(
    aiohttp_client, migrated_pooled_url
):
    client = await pooled_client(aiohttp_client, migrated_pooled_url)
    token = (await signup(client))["access_token"]
    headers = {**bearer(token), "Idempotency-Key": "through-the-pooler"}
    first = await client.post("/api/tasks", json={"title": "t"}, headers=headers)
    again = await client.post("/api/tasks", json={"title": "t"}, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()


async def test_a_sync_through_the_pooler_returns_changes_and_deletions(
    aiohttp_client, migrated_pooled_url
):
    # Each page is one statement, its snapshot and the database's identity
    # read in it, so any server connection the pooler lends will do.
    client = await pooled_client(aiohttp_client, migrated_pooled_url)
    token = (await signup(client))["access_token"]
    made = []
    for title in "abc":
        resp = await client.post("/api/tasks", json={"title": title}, headers=bearer(token))
        made.append((await resp.json())["id"])
    first = await client.get("/api/tasks/changes?limit=2", headers=bearer(token))
    page = await first.json()
    rest = await client.get(
        "/api/tasks/changes", params={"since": page["next"]}, headers=bearer(token)
    )
    done = await rest.json()
    assert [t["id"] for t in page["tasks"] + done["tasks"]] == made
    assert done["more"] is False
    await client.patch(f"/api/tasks/{made[0]}", json={"title": "x"}, headers=bearer(token))
    await client.delete(f"/api/tasks/{made[1]}", headers=bearer(token))
    later = await client.get(
        "/api/tasks/changes", params={"since": done["next"]}, headers=bearer(token)
    )
    body = await later.json()
    assert [t["title"] for t in body["tasks"]] == ["x"]
    assert [gone["id"] for gone in body["deleted"]] == [made[1]]


async def test_an_event_stream_through_the_pooler_hears_a_change(
    aiohttp_client, migrated_pooled_url
):
    # Without a direct connection the streams are woken by polling the
    # change feed, which a transaction pooler carries like any query.
    client = await pooled_client(aiohttp_client, migrated_pooled_url)
    token = (await signup(client))["access_token"]
    stream = await client.get("/api/tasks/events", headers=bearer(token))
    assert stream.status == 200
    await client.post("/api/tasks", json={"title": "pooled"}, headers=bearer(token))
    event = await next_event(stream)
    assert event["event"] == "task"
    assert '"title":"pooled"' in event["data"]
    stream.close()
