from __future__ import annotations

import time
import uuid

import asyncpg
import orjson
import pytest

from service.db import Database, QueryFileError, QueryParamsError, load_queries, migration_ids
from service.errors import DatabaseUnavailable
from service.settings import DEFAULT_SQL_DIR
from service.sqlfiles import placeholders
from tests.conftest import MIGRATIONS_DIR, make_settings

QUERIES = load_queries(DEFAULT_SQL_DIR / "queries")
# The listing's statement, inside list_tasks().
LISTING_FUNCTION = (MIGRATIONS_DIR / "0021.list_tasks_function.sql").read_text()


def test_every_query_file_loads_with_its_name_and_shape():
    files = sorted(p.stem for p in (DEFAULT_SQL_DIR / "queries").rglob("*.sql"))
    assert sorted({q.path.stem for q in QUERIES.values()}) == files
    for query in QUERIES.values():
        assert query.sql.startswith(f"-- name: {query.path.stem} {query.shape}")
        assert query.name == query.path.stem


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_header_names_the_placeholders_its_statement_uses(name):
    # $1..$n contiguous, each named once, each used, each cast as its header
    # says (the loader refuses any other file; this says so per query).
    query = QUERIES[name]
    used = placeholders(query.sql)
    assert [p.number for p in query.params] == list(range(1, len(query.params) + 1))
    assert sorted(used) == [p.number for p in query.params]
    assert len(set(query.names)) == len(query.names)
    for p in query.params:
        assert used[p.number] == {p.type} if p.type else len(used[p.number]) == 1, p
        assert None not in used[p.number], f"${p.number} needs its cast"


def test_the_listings_order_by_every_sort_the_api_resolves():
    from service.tasks.schemas import SORTS, TaskListQuerySchema

    canonical = {TaskListQuerySchema().load({"sort": sort})["sort"] for sort in SORTS}
    assert len(canonical) == 10
    for sort in canonical:
        assert f"CASE $2::text WHEN '{sort}' THEN" in LISTING_FUNCTION, sort


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_every_query_prepares_against_the_migrated_schema(migrated_database, name):
    # A typo in a column, table or cast fails here, not in production.
    conn = await asyncpg.connect(migrated_database)
    try:
        statement = await conn.prepare(QUERIES[name].sql)
        shape = QUERIES[name].shape
        if shape in (":one", ":many", ":val"):
            assert statement.get_attributes(), f"{name} is {shape} but returns no columns"
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("filename", "text", "message"),
    [
        ("a.sql", "SELECT 1;\n", "first line must be"),
        ("b.sql", "-- name: other :one\nSELECT 1;\n", "header names 'other'"),
        ("c.sql", "-- name: c :some\nSELECT 1;\n", "shape ':some'"),
        ("d.sql", "-- name: d :val\n-- Why.\n-- Index: none.\nSELECT $1::int;\n", r"\$\[1\]"),
        (
            "e.sql",
            "-- name: e :val\n-- Params: $1 a int, $3 b int\n-- Why.\n-- Index: none.\nSELECT 1;\n",
            "in order",
        ),
        (
            "f.sql",
            "-- name: f :val\n-- Params: $1 a text\n-- Why.\n-- Index: none.\nSELECT $1::int;\n",
            "every use must be ::text",
        ),
        (
            "g.sql",
            "-- name: g :val\n-- Params: $1 a int\n-- Why.\n-- Index: none.\nSELECT 1;\n",
            "uses",
        ),
    ],
)
def test_a_bad_query_header_is_refused(tmp_path, filename, text, message):
    (tmp_path / filename).write_text(text)
    with pytest.raises(QueryFileError, match=message):
        load_queries(tmp_path)


def test_a_query_name_may_not_repeat(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.sql").write_text(
            "-- name: same :val\n-- Why.\n-- Index: none.\nSELECT 1;\n"
        )
    with pytest.raises(QueryFileError, match="also defined"):
        load_queries(tmp_path)


def test_migration_ids_are_the_file_names_in_order():
    ids = migration_ids(MIGRATIONS_DIR)
    assert ids == tuple(sorted(ids))
    assert ids[0] == "0001.create_users"
    assert not any(i.endswith(".rollback") for i in ids)
    for mid in ids:
        assert (MIGRATIONS_DIR / f"{mid}.rollback.sql").is_file(), f"{mid} has no rollback file"


async def test_a_down_database_fails_fast_and_recovers(unreachable_database_url, migrated_database):
    settings = make_settings(DATABASE_URL=unreachable_database_url)
    db = Database(settings, QUERIES)
    await db.open()  # must not raise: the service starts anyway
    assert db.pool is None
    with pytest.raises(DatabaseUnavailable):
        await db.many("list_applied_migrations")
    # Within the back-off window the next caller is answered without a new
    # connection attempt.
    assert db._next_attempt > time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        await db.many("list_applied_migrations")

    # The same object serves once the database is reachable.
    db.settings = make_settings(DATABASE_URL=migrated_database)
    db._next_attempt = 0.0
    rows = await db.many("list_applied_migrations")
    assert {r["migration_id"] for r in rows} == set(migration_ids(MIGRATIONS_DIR))
    await db.close()


async def test_calling_a_query_with_the_wrong_shape_is_an_error(settings):
    db = Database(settings, QUERIES)
    with pytest.raises(QueryFileError, match="is :many"):
        await db.one("list_applied_migrations")
    await db.close()


async def test_a_missing_or_unknown_parameter_is_a_bug_raised_before_connecting(settings):
    db = Database(settings, QUERIES)
    with pytest.raises(QueryParamsError, match="missing user_id"):
        await db.val("get_task", id=None)
    with pytest.raises(QueryParamsError, match="unknown owner"):
        await db.val("get_task", id=None, user_id=None, owner=None)
    with pytest.raises(QueryParamsError, match="unknown id"):
        await db.many("list_applied_migrations", id=None)
    assert db.pool is None
    await db.close()


async def test_a_transaction_commits_together_or_not_at_all(settings):
    db = Database(settings, QUERIES)
    user_id = await asyncpg_user(settings.database_url)

    async def abandoned() -> None:
        async with db.transaction() as conn:
            await db.val(CREATE, conn=conn, **task(user_id, "first"))
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await abandoned()
    async with db.transaction() as conn:
        await db.val(CREATE, conn=conn, **task(user_id, "kept"))
        await db.val(CREATE, conn=conn, **task(user_id, "kept too"))
    rows = await db.many("list_tasks", user_id=user_id, **NO_FILTERS, limit=10)
    assert [orjson.loads(r[0])["title"] for r in rows] == ["kept", "kept too"]
    await db.close()


NO_FILTERS = {
    "sort": "title",
    "completed": None,
    "q": None,
    "priorities": None,
    "due_after": None,
    "due_before": None,
    "overdue": None,
    "after_at": None,
    "after_text": None,
    "after_id": None,
    "indexed_q": None,
    "tags": None,
}
CREATE = "create_task"


def task(user_id, title: str) -> dict:
    return {
        "user_id": user_id,
        "title": title,
        "description": None,
        "completed": False,
        "priority": "none",
        "due_at": None,
        "remind_at": None,
        "tags": [],
        "repeat": None,
        "max_tasks": 10_000,
    }


async def asyncpg_user(url: str):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "INSERT INTO users (email, password_hash, name) VALUES ($1, $2, 'T') RETURNING id",
            "t@example.com",
            "$2b$04$" + "a" * 53,
        )
    finally:
        await conn.close()


async def test_a_search_finds_what_the_filter_finds(settings):
    # list_tasks with indexed_q (the trigram index) and without (strpos
    # on lower()) must agree on every q, including LIKE's own characters
    # and text where lower() and ILIKE would differ.
    db = Database(settings, QUERIES)
    user_id = await asyncpg_user(settings.database_url)
    texts = ["100% done", "snake_case", "snakeXcase", "back\\slash", "ΣΟΦΊΑΣ σοφίας", "İstanbul"]
    texts += ["STRASSE", "straße", "ǅemal", "ﬁle", "Ärger"]
    for text in texts:
        await db.val(CREATE, **{**task(user_id, text), "description": f"re: {text}"})
    queries = ["100%", "0% d", "ke_ca", "k\\sl", "σοφίασ", "σοφίας", "istanbul", "i̇stanbul"]
    queries += ["strasse", "STRAßE", "ǆemal", "dže", "file", "ﬁle", "ärger", "e: s", "none"]
    found = 0
    for q in queries:
        page = {"user_id": user_id, **NO_FILTERS, "q": q, "limit": 50}
        indexed = await db.many("list_tasks", **{**page, "indexed_q": q})
        filtered = await db.many("list_tasks", **page)
        assert indexed == filtered, q
        found += len(indexed)
    assert found >= len(queries) - 1  # all but "none" find something
    await db.close()


async def test_the_tag_index_finds_what_lower_says_is_the_same_tag(settings):
    # list_tasks with tags (tasks_tag_keys_idx) must find exactly the
    # tasks where every wanted tag equals one of the task's under
    # PostgreSQL's lower(), which tasks_tags_check and GET /api/tags use too.
    db = Database(settings, QUERIES)
    user_id = await asyncpg_user(settings.database_url)
    tagsets = [["İstanbul"], ["STRASSE"], ["straße"], ["Ǆemal", "ﬁle"], ["Work"], ["work", "x"]]
    tagsets += [["ΣΟΦΊΑΣ"], ["100%"], ["a_b"], []]
    for i, tags in enumerate(tagsets):
        await db.val(CREATE, **{**task(user_id, f"t{i}"), "tags": tags})
    wanted = [["istanbul"], ["i̇stanbul"], ["strasse"], ["STRAßE"], ["ǆemal"], ["ǅemal", "FILE"]]
    wanted += [["ﬁle"], ["WORK"], ["work", "X"], ["σοφίας"], ["σοφίασ"], ["100%"], ["a%b"]]
    conn = await asyncpg.connect(settings.database_url)

    async def lower(tags: list[str]) -> set[str]:
        return set(
            await conn.fetchval("SELECT array_agg(lower(t)) FROM unnest($1::text[]) t", tags)
        )

    try:
        found = 0
        for tags in wanted:
            want = await lower(tags)
            expected = {
                f"t{i}" for i, have in enumerate(tagsets) if have and want <= await lower(have)
            }
            page = {"user_id": user_id, **NO_FILTERS, "tags": tags, "limit": 50}
            rows = await db.many("list_tasks", **page)
            assert {orjson.loads(r[0])["title"] for r in rows} == expected, tags
            found += len(rows)
    finally:
        await conn.close()
        await db.close()
    assert found >= 5  # most of them find something


async def test_a_listing_is_planned_with_its_values_and_nothing_else_is(settings):
    # list_tasks() carries the plan mode tests/tasks/test_query_plans.py
    # proves the listing with; every session keeps PostgreSQL's own.
    db = Database(settings, QUERIES)
    show = "SELECT current_setting('plan_cache_mode')"
    async with db.transaction() as conn:
        config = await conn.fetchval("SELECT proconfig FROM pg_proc WHERE proname = 'list_tasks'")
        assert config == ["plan_cache_mode=force_custom_plan"]
        assert await conn.fetchval(show) == "auto"
    async with db.search(uuid.uuid4()) as conn:
        assert await conn.fetchval(show) == "auto"
    await db.close()


async def test_every_statement_the_service_prepares_is_written_in_a_query_file(client):
    # The text a DBA reads in sql/queries/ is the text the server runs: the
    # server's own list of what the service's connections prepared, after
    # the service listed through every sort, page, search and filter.
    from service import keys
    from tests.helpers import TASKS, bearer, make_task, user_token, walk

    ann = await user_token(client)
    for i, (due, tags) in enumerate([("2030-01-01T00:00:00Z", ["work"]), (None, []), (None, [])]):
        await make_task(client, ann.token, title=f"t{i}", due_at=due, tags=tags, priority="low")
    filters = ["", "&q=t1", "&q=t", "&tag=work", "&q=t0&tag=work", "&overdue=false"]
    filters += ["&priority=low,high&completed=false&due_after=2000-01-01T00:00:00Z"]
    for column in ("created_at", "updated_at", "title", "due_at", "priority"):
        for sort in (column, "-" + column):
            for more in filters:
                await walk(client, ann.token, f"sort={sort}&limit=1{more}")
    task = (await (await client.get(TASKS, headers=bearer(ann.token))).json())[0]
    assert (await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))).status == 200
    assert (await client.get("/api/tags", headers=bearer(ann.token))).status == 200

    db = client.app[keys.DB]
    probe = "SELECT statement FROM pg_prepared_statements -- the test's"
    conns = [await db.pool.acquire() for _ in range(db.pool_max)]  # every one it has
    try:
        prepared = {row[0] for conn in conns for row in await conn.fetch(probe)}
    finally:
        for conn in conns:
            await db.pool.release(conn)
    driver = {v for v in vars(asyncpg.introspection).values() if isinstance(v, str)}
    prepared -= {probe, *driver}  # asyncpg's own catalogue lookups
    # and the JIT switch around them (it reads the task row's type once)
    prepared = {s for s in prepared if "set_config('jit'" not in s}

    def words(text: str) -> str:
        return " ".join(text.split())

    files = {words(p.read_text()) for p in (DEFAULT_SQL_DIR / "queries").rglob("*.sql")}
    assert [s for s in prepared if words(s) not in files] == []
    names = {s.split(None, 3)[2] for s in prepared}
    assert {"list_tasks", "get_task", "list_tags"} <= names, names
