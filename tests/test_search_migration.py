"""0007 builds the search index CONCURRENTLY, outside a transaction, on a
table that already has rows: directly and through PgBouncer in transaction
mode, under yoyo's lock, after a failed earlier build, and back."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql
from yoyo import read_migrations

from service.db import load_queries, migration_ids
from service.migrations import backend as yoyo_backend
from service.migrations import migrate, rollback
from service.settings import DEFAULT_SQL_DIR
from tests.conftest import MIGRATIONS_DIR
from tests.helpers import listing_plan
from tests.launcher import wait_until

INDEX = "tasks_user_id_text_trgm_idx"
SEARCH = "0007.add_task_search_index"
# 0007 and the migrations after it, which apply and roll back with it here.
FROM_SEARCH = [m for m in migration_ids(MIGRATIONS_DIR) if m >= SEARCH]
TASKS = 3000


def migrate_before_search(url: str) -> None:
    """Every migration before 0007, then tasks for it to index."""
    backend = yoyo_backend(url)
    try:
        found = read_migrations(str(MIGRATIONS_DIR))
        before = found.__class__([m for m in found if m.id < SEARCH])
        backend.apply_migrations(backend.to_apply(before))
    finally:
        backend.connection.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (email, password_hash, name) "
            "VALUES ('a@example.com', '$2b$04$' || repeat('a', 53), 'A')"
        )
        conn.execute(
            "INSERT INTO tasks (user_id, title, description) "
            "SELECT id, 'Invoice ' || g, 'due ' || g FROM users, generate_series(1, %s) AS g",
            (TASKS,),
        )


def index_state(url: str) -> tuple[bool, str] | None:
    """(valid, definition) of the search index, or None."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
            "WHERE i.indexrelid = to_regclass(%s)",
            (INDEX,),
        ).fetchone()
    return (row[0], row[1]) if row else None


def fail_a_build(url: str) -> None:
    """What a failed CREATE INDEX CONCURRENTLY leaves: an INVALID index of
    that name (here a unique one that meets duplicates)."""
    with (
        psycopg.connect(url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.UniqueViolation),
    ):
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON tasks (user_id)")
    state = index_state(url)
    assert state is not None
    assert state[0] is False


def search(url: str, q: str) -> tuple[dict, int]:
    """(the plan, the count) of the service's first page for q, by title."""
    statement = load_queries(DEFAULT_SQL_DIR / "queries")["list_tasks"]
    with psycopg.connect(url) as conn:
        # Whether the index serves the statement, not the planner's choice
        # for 3,000 rows: that turns on whether autovacuum (on in the SCRAM
        # cluster) has analysed the table yet. test_query_plans.py asks the
        # planner's choice at 100,000 tasks.
        conn.execute("SET enable_seqscan = off")
        conn.execute(sql.SQL("PREPARE page AS {}").format(sql.SQL(statement.sql)))
        (user_id,) = conn.execute("SELECT id FROM users").fetchone()
        # By title, the first page; the other filters and the tags not given.
        execute = sql.SQL(
            "EXECUTE page({}, 'title', NULL, {}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
            "1000, {}, NULL)"
        ).format(user_id, q, q)
        plan, rows = listing_plan(conn, execute)
        return plan, len(rows)


def check_applies_after_a_failed_build_and_rolls_back(
    url: str, admin_url: str, superuser_url: str
) -> None:
    migrate_before_search(admin_url)
    fail_a_build(admin_url)
    assert migrate(url, MIGRATIONS_DIR) == FROM_SEARCH
    valid, definition = index_state(admin_url)
    assert valid
    assert "USING gin ((ARRAY[user_id]), lower(title) gin_trgm_ops" in definition
    assert "WITH (fastupdate='on', gin_pending_list_limit='64')" in definition
    plan, found = search(
        superuser_url, "VOICE 29"
    )  # auto_explain is the superuser's  # Invoice 29, 290..299, 2900..2999
    assert INDEX in str(plan), plan
    assert found == 1 + 10 + 100
    assert rollback(url, MIGRATIONS_DIR, len(FROM_SEARCH)) == FROM_SEARCH[::-1]
    assert index_state(admin_url) is None
    assert migrate(url, MIGRATIONS_DIR) == FROM_SEARCH
    assert index_state(admin_url)[0]
    with psycopg.connect(admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone()[0] == 0


def test_0007_applies_on_a_populated_table_after_a_failed_build_and_rolls_back(
    empty_database,
):
    check_applies_after_a_failed_build_and_rolls_back(
        empty_database, empty_database, empty_database
    )


def test_0007_does_the_same_through_pgbouncer_in_transaction_mode(pgbouncer, scram_cluster):
    database = scram_cluster.create_database()
    check_applies_after_a_failed_build_and_rolls_back(
        pgbouncer.url(database),
        scram_cluster.url(database),
        scram_cluster.admin_url.replace("/postgres?", f"/{database}?"),
    )


def test_a_build_cancelled_midway_leaves_no_invalid_index_and_migrate_again_applies(
    empty_database,
):
    migrate_before_search(empty_database)
    errors: list[BaseException] = []
    with psycopg.connect(empty_database) as writer:
        # A write not yet committed: the build waits for it to end.
        writer.execute("UPDATE tasks SET completed = completed WHERE FALSE")

        def run() -> None:
            try:
                migrate(empty_database, MIGRATIONS_DIR)
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        with psycopg.connect(empty_database, autocommit=True) as admin:
            waiting = (
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%%CREATE INDEX CONCURRENTLY%%' "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            wait_until(
                lambda: admin.execute(waiting).fetchone() is not None,
                "the build never waited for the open transaction",
            )
            assert index_state(empty_database)[0] is False  # made, not yet valid
            admin.execute(f"SELECT pg_cancel_backend(({waiting}))")
            # The rollback step's DROP INDEX CONCURRENTLY waits for it too.
            writer.rollback()
            thread.join()
    assert isinstance(errors[0], psycopg.errors.QueryCanceled), errors
    # yoyo ran the rollback's DROP INDEX CONCURRENTLY IF EXISTS at once.
    assert index_state(empty_database) is None
    assert migrate(empty_database, MIGRATIONS_DIR) == FROM_SEARCH
    assert index_state(empty_database)[0]
