"""With 100k tasks over 1000 users, every task query reads the caller's rows
through an index (the one its header names), never a sequential scan, in
both the custom and the generic plan PostgreSQL may choose for a prepared
statement; and a keyset page starts at the cursor inside the index, so a
deep page costs what the first one does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from service.db import load_queries
from service.migrations import migrate
from service.settings import DEFAULT_SQL_DIR
from service.tasks.routes import _SORT_QUERIES
from tests.conftest import MIGRATIONS_DIR, create_database, drop_database

USERS = 1000
TASKS_PER_USER = 100
QUERIES = {
    name: q
    for name, q in load_queries(DEFAULT_SQL_DIR / "queries").items()
    if q.path.parent.name == "tasks"
}


@pytest.fixture(scope="module")
def big_database() -> Iterator[str]:
    url = create_database("todo_plans")
    migrate(url, MIGRATIONS_DIR)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (email, password_hash, name) "
            "SELECT 'user' || g || '@example.com', '$2b$04$' || repeat('a', 53), 'User ' || g "
            "FROM generate_series(1, %s) AS g",
            (USERS,),
        )
        conn.execute(
            "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at) "
            "SELECT u.id, 'task ' || g, CASE WHEN g %% 2 = 0 THEN 'details ' || g END, "
            "       g %% 3 = 0, now() - g * interval '1 minute', now() - g * interval '30 seconds' "
            "FROM users AS u CROSS JOIN generate_series(1, %s) AS g",
            (TASKS_PER_USER,),
        )
        conn.execute("ANALYZE users")
        conn.execute("ANALYZE tasks")
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def sample(big_database) -> dict:
    with psycopg.connect(big_database) as conn:
        row = conn.execute(
            "SELECT id, user_id, title, created_at, updated_at, version FROM tasks "
            "ORDER BY created_at OFFSET 54321 LIMIT 1"
        ).fetchone()
    keys = ("id", "user_id", "title", "created_at", "updated_at", "version")
    return dict(zip(keys, row, strict=True))


def params_for(name: str, s: dict) -> list:
    """The statement's arguments in $n order, from its header's names."""
    query = QUERIES[name]
    if query.sort is not None:
        cursor = {"after_value": s[query.sort.key.lstrip("-")], "after_id": s["id"]}
        given = {"user_id": s["user_id"], "completed": None, "q": None, "limit": 51, **cursor}
    else:
        given = {
            "id": s["id"],
            "user_id": s["user_id"],
            "if_match": [s["version"]],
            "title": "t",
            "description_sent": True,
            "description": None,
            "completed": True,
            "max_tasks": 10_000,
        }
    return [given[n] for n in query.names]


def plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(url: str, name: str, params: list, mode: str) -> list[dict]:
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Literal(mode)))
        conn.execute(sql.SQL("PREPARE q AS {}").format(sql.SQL(QUERIES[name].sql.rstrip(";\n "))))
        placeholders = sql.SQL(", ").join(sql.Literal(p) for p in params)
        (doc,) = conn.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE q({})").format(placeholders)
        ).fetchone()
        conn.rollback()
    doc = json.loads(doc) if isinstance(doc, str) else doc
    return list(plan_nodes(doc[0]["Plan"]))


def test_every_sort_is_checked_on_both_pages():
    listing = [q for q in QUERIES.values() if q.sort is not None]
    assert {(q.sort.key, q.after) for q in listing} == {
        (sort, after) for sort in _SORT_QUERIES for after in (False, True)
    }


def test_there_is_data_enough(big_database):
    with psycopg.connect(big_database) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] >= 100_000
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 1000


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_task_query_uses_its_index(big_database, sample, name, mode):
    nodes = explain(big_database, name, params_for(name, sample), mode)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    # Index Scan, Index Only Scan, or Bitmap Index Scan under a Bitmap Heap Scan.
    scans = [n for n in nodes if "Index Name" in n]
    named = QUERIES[name].index_name  # its `-- Index:` line, or its listing's Sort entry
    # The task counters (0005): create_task and delete_task lock a stripe,
    # then update it; create_task_near_limit looks for a missing stripe,
    # then locks them all.
    counter = "task_counts_pkey"
    counted = {
        "delete_task": [counter, counter],
        "create_task": [counter],
        "create_task_near_limit": [counter],
    }
    assert [n["Index Name"] for n in scans] == [named, *counted.get(name, [])], nodes
    cond = scans[0].get("Index Cond", "")
    assert "user_id" in cond or "id = " in cond, cond
    if QUERIES[name].after:
        # The cursor is where the index scan starts, not a filter after it.
        assert re.search(r"ROW\(|\) [<>] \(", cond), cond
