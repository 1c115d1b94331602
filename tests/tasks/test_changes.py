"""GET /api/tasks/changes (API.md "Sync"): first and incremental syncs,
pages, deletions, commits out of order, and the tokens it refuses."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.app import create_app
from service.migrations import migrate
from service.settings import DEFAULT_SQL_DIR
from service.tasks.cursor import CursorCodec
from service.tasks.sync import _EPOCH, _MICROSECOND
from tests.conftest import (
    MIGRATIONS_DIR,
    TEST_SECRET,
    create_database,
    drop_database,
    make_settings,
)
from tests.helpers import PASSWORD, TASKS, bearer, problem, user_token

CHANGES = "/api/tasks/changes"


@pytest.fixture
async def ann(client):
    return await user_token(client)


class Made(str):
    """A created task's id, as `.id` too."""

    @property
    def id(self) -> str:
        return str(self)


async def make_task(client, token: str, **fields) -> Made:
    resp = await client.post(TASKS, json={"title": "a task", **fields}, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return Made((await resp.json())["id"])


async def sync(client, token: str, since: str | None = None, limit: int | None = None):
    params = {}
    if since is not None:
        params["since"] = since
    if limit is not None:
        params["limit"] = str(limit)
    resp = await client.get(CHANGES, params=params, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert "Authorization" in resp.headers["Vary"]
    assert resp.headers["Cache-Control"] == "no-store"
    return await resp.json()


async def sync_all(client, token: str, since: str | None = None, limit: int | None = None):
    """Every page of one sync: (tasks, deleted ids, the final token)."""
    tasks, deleted = [], []
    while True:
        page = await sync(client, token, since, limit)
        tasks += page["tasks"]
        deleted += [gone["id"] for gone in page["deleted"]]
        since = page["next"]
        if not page["more"]:
            return tasks, deleted, since


def ids(tasks) -> list[str]:
    return [task["id"] for task in tasks]


class Copy:
    """A client's copy. A sync may return a task again unchanged (API.md):
    whenever any transaction in the cluster, the tests' or not, was open
    as its token was issued. `apply` says what a page really changed."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict] = {}

    def apply(self, *pages) -> tuple[list[str], list[str]]:
        """(ids of tasks new or changed, ids deleted), in the pages' order."""
        changed, deleted = [], []
        for page in pages:
            for task in page["tasks"]:
                if self.tasks.get(task["id"]) != task:
                    changed.append(task["id"])
                self.tasks[task["id"]] = task
            for gone in page["deleted"]:
                if self.tasks.pop(gone["id"], None) is not None:
                    deleted.append(gone["id"])
        return changed, deleted


async def sync_pages(client, token: str, since: str | None = None, limit: int | None = None):
    """Every page of one sync."""
    pages = []
    while not pages or pages[-1]["more"]:
        pages.append(await sync(client, token, pages[-1]["next"] if pages else since, limit))
    return pages


async def test_a_first_sync_is_every_task_oldest_change_first(client, ann):
    made = [await make_task(client, ann.token, title=f"t{i}") for i in range(3)]
    await client.patch(
        f"{TASKS}/{made[0].id}", json={"title": "t0 again"}, headers=bearer(ann.token)
    )
    page = await sync(client, ann.token)
    assert page["more"] is False
    assert page["deleted"] == []
    assert page["reminders"] == []
    assert ids(page["tasks"]) == [made[1].id, made[2].id, made[0].id]
    # Each task exactly as GET answers it.
    for task in page["tasks"]:
        one = await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))
        assert task == await one.json()


async def test_an_incremental_sync_is_what_changed_and_what_was_deleted(client, ann):
    kept, edited, done, gone = [await make_task(client, ann.token, title=t) for t in "abcd"]
    copy = Copy()
    first = await sync_pages(client, ann.token)
    assert copy.apply(*first) == ([kept.id, edited.id, done.id, gone.id], [])
    token = first[-1]["next"]
    assert copy.apply(await sync(client, ann.token, token)) == ([], [])

    await client.patch(f"{TASKS}/{edited.id}", json={"priority": "high"}, headers=bearer(ann.token))
    await client.patch(f"{TASKS}/{done.id}/complete", headers=bearer(ann.token))
    assert (await client.delete(f"{TASKS}/{gone.id}", headers=bearer(ann.token))).status == 204
    new = await make_task(client, ann.token, title="e")

    page = await sync(client, ann.token, token)
    assert page["more"] is False
    assert copy.apply(page) == ([edited.id, done.id, new.id], [gone.id])
    assert copy.tasks[edited.id]["priority"] == "high"
    assert copy.tasks[done.id]["completed"] is True
    [deletion] = page["deleted"]
    assert datetime.fromisoformat(deletion["deleted_at"]) <= datetime.now(UTC)
    # The next token has seen all of it.
    assert copy.apply(await sync(client, ann.token, page["next"])) == ([], [])


async def test_pages_carry_every_change_once(client, ann):
    made = [await make_task(client, ann.token, title=f"t{i}") for i in range(7)]
    copy = Copy()
    first = await sync_pages(client, ann.token, limit=3)
    # A first sync's pages never overlap.
    assert [t["id"] for page in first for t in page["tasks"]] == [task.id for task in made]
    assert copy.apply(*first) == ([task.id for task in made], [])

    for task in made[:5]:
        await client.patch(f"{TASKS}/{task.id}", json={"title": "x"}, headers=bearer(ann.token))
    for task in made[5:]:
        await client.delete(f"{TASKS}/{task.id}", headers=bearer(ann.token))
    pages = await sync_pages(client, ann.token, first[-1]["next"], limit=3)
    assert len(pages) >= 3
    assert all(len(page["tasks"]) + len(page["deleted"]) <= 3 for page in pages)
    changed, deleted = copy.apply(*pages)
    assert changed == [task.id for task in made[:5]]
    assert deleted == [task.id for task in made[5:]]


async def test_a_change_made_while_a_sync_pages_comes_in_the_next_sync(client, ann):
    made = [await make_task(client, ann.token, title=f"t{i}") for i in range(4)]
    first = await sync(client, ann.token, limit=2)
    # The first page's task changes, and a new one is made, mid-sync.
    await client.patch(f"{TASKS}/{made[0].id}", json={"title": "moved"}, headers=bearer(ann.token))
    await client.delete(f"{TASKS}/{made[1].id}", headers=bearer(ann.token))
    tasks, deleted, token = await sync_all(client, ann.token, first["next"], limit=2)
    page = await sync(client, ann.token, token)
    titles = {task["id"]: task["title"] for task in first["tasks"] + tasks + page["tasks"]}
    assert titles[made[0].id] == "moved"
    assert made[1].id in deleted + [gone["id"] for gone in page["deleted"]]


async def _open_writer(database_url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url)
    await conn.execute("BEGIN")
    return conn


async def test_a_write_that_commits_after_a_later_one_is_not_lost(client, ann, migrated_database):
    # The interleaving is held in the database: an edit and a deletion begin
    # (their transaction ids come first) and stay open while a later write
    # commits and a sync sees it; they commit after that sync.
    slow_edit, slow_delete, fast = [await make_task(client, ann.token, title=t) for t in "abc"]
    before, _, token = await sync_all(client, ann.token)
    writer = await _open_writer(migrated_database)
    try:
        await writer.execute(
            "UPDATE tasks SET title = 'late' WHERE id = $1", uuid.UUID(slow_edit.id)
        )
        delete = (DEFAULT_SQL_DIR / "queries/tasks/delete_task.sql").read_text()
        assert await writer.fetchval(
            delete, uuid.UUID(slow_delete.id), uuid.UUID(ann.id), None, 86400.0
        )
        await client.patch(f"{TASKS}/{fast.id}", json={"title": "early"}, headers=bearer(ann.token))
        seen = await sync(client, ann.token, token)
        copy = Copy()
        copy.tasks = {task["id"]: task for task in before}
        assert copy.apply(seen) == ([fast.id], [])
        # Ordering by time or by transaction id, the client would skip both:
        # each started before the edit it has already seen.
        await writer.execute("COMMIT")
    finally:
        await writer.close()
    after = await sync(client, ann.token, seen["next"])
    assert copy.apply(after) == ([slow_edit.id], [slow_delete.id])
    assert copy.tasks[slow_edit.id]["title"] == "late"


async def test_a_create_that_commits_late_is_not_lost(client, ann, migrated_database):
    older = await make_task(client, ann.token, title="older")
    _, _, token = await sync_all(client, ann.token)
    writer = await _open_writer(migrated_database)
    try:
        late_id = await writer.fetchval(
            "INSERT INTO tasks (user_id, title) VALUES ($1, 'late') RETURNING id", uuid.UUID(ann.id)
        )
        await client.patch(f"{TASKS}/{older.id}", json={"title": "x"}, headers=bearer(ann.token))
        seen = await sync(client, ann.token, token)
        assert ids(seen["tasks"]) == [older.id]
        await writer.execute("COMMIT")
    finally:
        await writer.close()
    after = await sync(client, ann.token, seen["next"])
    assert str(late_id) in ids(after["tasks"])


async def test_the_same_route_under_the_users_id(client, ann):
    task = await make_task(client, ann.token)
    resp = await client.get(f"/api/{ann.id}/tasks/changes", headers=bearer(ann.token))
    assert resp.status == 200
    assert ids((await resp.json())["tasks"]) == [task.id]
    other = await client.get(f"/api/{uuid.uuid4()}/tasks/changes", headers=bearer(ann.token))
    await problem(other, 403)


async def test_changes_is_not_a_task_id(client, ann):
    resp = await client.put(CHANGES, json={"title": "x"}, headers=bearer(ann.token))
    assert resp.status == 405


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=x", "since=", "sort=title", "limit=1&limit=2"],
)
async def test_bad_parameters_are_a_422(client, ann, query):
    resp = await client.get(f"{CHANGES}?{query}", headers=bearer(ann.token))
    await problem(resp, 422)


@pytest.mark.parametrize(
    "since",
    ["nonsense", "a.b", "e30.AAAA", "W10." + "A" * 22, "x" * 512],
)
async def test_a_forged_token_is_a_400(client, ann, since):
    resp = await client.get(CHANGES, params={"since": since}, headers=bearer(ann.token))
    body = await problem(resp, 400)
    assert body["type"].endswith("/problems/sync-token-invalid")
    assert "from the start" in body["detail"]


async def test_an_edited_or_another_accounts_token_is_a_400(client, ann):
    await make_task(client, ann.token)
    bob = await user_token(client, "bob@example.com")
    token = (await sync(client, ann.token))["next"]
    payload, mac = token.split(".")
    edited = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}"
    for since, user in ((edited, ann), (token, bob)):
        resp = await client.get(CHANGES, params={"since": since}, headers=bearer(user.token))
        assert (await problem(resp, 400))["type"].endswith("/problems/sync-token-invalid")


def _token(user_id, *, after_xid, run_at, database_id) -> str:
    """A token as the service signs it (the test knows its secret)."""
    at = (run_at - _EPOCH) // _MICROSECOND
    data = [after_xid, str(uuid.UUID(int=0)), None, at, True, database_id]
    return CursorCodec(TEST_SECRET).sign(data, ("sync", uuid.UUID(str(user_id))))


def _payload(token: str, user_id) -> list:
    return CursorCodec(TEST_SECRET).verify(token, ("sync", uuid.UUID(str(user_id))))


async def test_a_token_older_than_the_retention_is_a_410(aiohttp_client, migrated_database):
    settings = make_settings(DATABASE_URL=migrated_database, CHANGES_RETENTION="2h")
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)
    after_xid, _, _, _, _, database_id = _payload(
        (await sync(client, ann.token))["next"], uuid.UUID(ann.id)
    )
    now = datetime.now(UTC)
    young = _token(
        ann.id, after_xid=after_xid, run_at=now - timedelta(hours=1), database_id=database_id
    )
    assert (await sync(client, ann.token, young))["more"] is False
    old = _token(
        ann.id, after_xid=after_xid, run_at=now - timedelta(hours=3), database_id=database_id
    )
    resp = await client.get(CHANGES, params={"since": old}, headers=bearer(ann.token))
    body = await problem(resp, 410)
    assert body["type"].endswith("/problems/sync-token-expired")
    assert "from the start" in body["detail"]


async def test_a_token_from_ahead_of_the_database_is_a_410(client, ann):
    # A backup restored in place: the token's floor is past every transaction id.
    after_xid, _, _, _, _, database_id = _payload(
        (await sync(client, ann.token))["next"], uuid.UUID(ann.id)
    )
    ahead = _token(
        ann.id, after_xid=after_xid + 10**9, run_at=datetime.now(UTC), database_id=database_id
    )
    resp = await client.get(CHANGES, params={"since": ahead}, headers=bearer(ann.token))
    assert (await problem(resp, 410))["type"].endswith("/problems/sync-token-expired")


async def test_a_token_from_another_database_is_a_410(
    aiohttp_client, client, ann, migrated_database
):
    # A restore into a new database, or another branch: the same account and
    # session (copied over, as a restore would), the same secret, another database.
    other_url = create_database("todo_other")
    try:
        migrate(other_url, MIGRATIONS_DIR)
        source, target = await asyncpg.connect(migrated_database), await asyncpg.connect(other_url)
        try:
            for table, column in (("users", "id"), ("sessions", "user_id")):
                for row in await source.fetch(
                    f"SELECT * FROM {table} WHERE {column} = $1", uuid.UUID(ann.id)
                ):
                    names = ", ".join(row.keys())
                    marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
                    await target.execute(
                        f"INSERT INTO {table} ({names}) VALUES ({marks})", *row.values()
                    )
        finally:
            await source.close()
            await target.close()
        other = await aiohttp_client(create_app(make_settings(DATABASE_URL=other_url)))
        token = (await sync(other, ann.token))["next"]
        assert (await sync(client, ann.token))["next"] != token
        resp = await client.get(CHANGES, params={"since": token}, headers=bearer(ann.token))
        body = await problem(resp, 410)
        assert "another database" in body["detail"]
    finally:
        drop_database(other_url)


async def test_old_tombstones_are_cleared_by_later_deletes(client, ann, migrated_database):
    conn = await asyncpg.connect(migrated_database)
    try:
        await conn.execute(
            "INSERT INTO task_tombstones (task_id, user_id, deleted_at)"
            " SELECT gen_random_uuid(), $1, now() - interval '31 days' - $2 * interval '1 hour'"
            " FROM generate_series(1, 25) AS n",
            uuid.UUID(ann.id),
            1,
        )
        await conn.execute(
            "INSERT INTO task_tombstones (task_id, user_id, deleted_at)"
            " VALUES (gen_random_uuid(), $1, now() - interval '30 days')",
            uuid.UUID(ann.id),
        )
        for _ in range(2):
            task = await make_task(client, ann.token)
            assert (
                await client.delete(f"{TASKS}/{task.id}", headers=bearer(ann.token))
            ).status == 204
        left = await conn.fetch(
            "SELECT deleted_at > now() - interval '31 days' AS recent FROM task_tombstones"
        )
    finally:
        await conn.close()
    # 25 expired: 20 cleared by the first delete, 5 by the second; the
    # recent one (within retention and its day) and the two new ones stay.
    assert sorted(row["recent"] for row in left) == [True, True, True]


async def test_deleting_the_account_leaves_nothing_of_it(client, ann, migrated_database):
    tasks = [await make_task(client, ann.token) for _ in range(3)]
    await client.delete(f"{TASKS}/{tasks[0].id}", headers=bearer(ann.token))
    await client.post(
        TASKS, json={"title": "k"}, headers={**bearer(ann.token), "Idempotency-Key": "k"}
    )
    bob = await user_token(client, "bob@example.com")
    await make_task(client, bob.token)
    conn = await asyncpg.connect(migrated_database)
    try:
        # Every table with a user_id column, so a new one is checked too.
        tables = [
            row["table_name"]
            for row in await conn.fetch(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'user_id'"
                " AND table_name IN (SELECT table_name FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE')"
            )
        ]
        assert {"tasks", "task_tombstones", "task_totals", "idempotency_keys"} <= set(tables)

        async def rows_of(user_id):
            return {
                t: await conn.fetchval(f"SELECT count(*) FROM {t} WHERE user_id = $1", user_id)
                for t in tables
            }

        before = await rows_of(uuid.UUID(ann.id))
        assert before["task_tombstones"] == 1
        assert before["idempotency_keys"] == 1
        resp = await client.delete(
            "/api/auth/me", json={"password": PASSWORD}, headers=bearer(ann.token)
        )
        assert resp.status == 204
        assert set((await rows_of(uuid.UUID(ann.id))).values()) == {0}
        assert (await rows_of(uuid.UUID(bob.id)))["tasks"] == 1
    finally:
        await conn.close()
    resp = await client.get(CHANGES, headers=bearer(ann.token))
    await problem(resp, 401)


async def test_the_feed_is_rendered_as_the_service_renders_tasks(client, ann):
    # Every field set, and every field null: the same bytes as a GET.
    full = await make_task(
        client,
        ann.token,
        title='quote " back \\ é 🙂',
        description="line\nnext\ttab",
        priority="high",
        due_at="2026-12-31T10:00:00.5+02:00",
        remind_at="2026-12-31T09:00:00Z",
        tags=["a", "B"],
        repeat="FREQ=DAILY",
    )
    bare = await make_task(client, ann.token, title="bare")
    await client.patch(f"{TASKS}/{bare.id}/complete", headers=bearer(ann.token))
    page = await client.get(CHANGES, headers=bearer(ann.token))
    text = await page.text()
    for task_id in (full.id, bare.id):
        one = await (await client.get(f"{TASKS}/{task_id}", headers=bearer(ann.token))).text()
        assert one in text


async def test_concurrent_syncs_and_writes_agree(client, ann):
    # Many syncs racing writes: every sync's answer is well formed and the
    # final one sees the final state.
    made = [await make_task(client, ann.token, title=f"t{i}") for i in range(5)]
    _, _, token = await sync_all(client, ann.token)

    async def write(task):
        for n in range(5):
            await client.patch(
                f"{TASKS}/{task.id}", json={"title": f"{task.id}-{n}"}, headers=bearer(ann.token)
            )

    copy: dict[str, str] = {}

    async def follow():
        nonlocal token
        for _ in range(10):
            tasks, _, token = await sync_all(client, ann.token, token, limit=2)
            copy.update({t["id"]: t["title"] for t in tasks})

    await asyncio.gather(*(write(t) for t in made), follow())
    tasks, _, token = await sync_all(client, ann.token, token)
    copy.update({t["id"]: t["title"] for t in tasks})
    assert copy == {task.id: f"{task.id}-4" for task in made}
