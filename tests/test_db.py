from __future__ import annotations

import time

import asyncpg
import pytest

from service.db import Database, QueryFileError, load_queries, migration_ids
from service.errors import DatabaseUnavailable
from service.settings import DEFAULT_SQL_DIR
from tests.conftest import MIGRATIONS_DIR, make_settings

QUERIES = load_queries(DEFAULT_SQL_DIR / "queries")


def test_every_query_file_loads_with_its_name_and_shape():
    files = sorted(p.stem for p in (DEFAULT_SQL_DIR / "queries").rglob("*.sql"))
    assert sorted(QUERIES) == files
    for query in QUERIES.values():
        assert query.sql.startswith(f"-- name: {query.name} {query.shape}")


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
    ],
)
def test_a_bad_query_header_is_refused(tmp_path, filename, text, message):
    (tmp_path / filename).write_text(text)
    with pytest.raises(QueryFileError, match=message):
        load_queries(tmp_path)


def test_a_query_name_may_not_repeat(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.sql").write_text("-- name: same :val\nSELECT 1;\n")
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


async def test_a_transaction_commits_together_or_not_at_all(settings):
    db = Database(settings, QUERIES)
    user_id = await asyncpg_user(settings.database_url)

    async def abandoned() -> None:
        async with db.transaction() as conn:
            await db.one("create_task", user_id, "first", None, False, conn=conn)
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await abandoned()
    async with db.transaction() as conn:
        await db.one("create_task", user_id, "kept", None, False, conn=conn)
        await db.one("create_task", user_id, "kept too", None, False, conn=conn)
    rows = await db.many("list_tasks_by_title_asc", user_id, None, None, 10)
    assert [r["title"] for r in rows] == ["kept", "kept too"]
    await db.close()


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
