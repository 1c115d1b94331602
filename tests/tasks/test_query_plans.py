"""With 100k tasks over 1000 users (and one user with 25k more), every task
query reads the caller's rows through an index (the one its header names),
never a sequential scan, in both the custom and the generic plan PostgreSQL
may choose for a prepared statement; a keyset page starts at the cursor
inside the index, so a deep page costs what the first one does, with or
without the other filters; and a search (q, tag) reads its GIN index, so one
that matches nothing costs about what a plain page does, however many tasks
the caller has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

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
BIG_USER_TASKS = 25_000  # a quarter of the others' rows, all one user's
TRIGRAM_INDEX = "tasks_user_id_text_trgm_idx"
TAGS_INDEX = "tasks_tag_keys_idx"
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
            "INSERT INTO users (email, password_hash, name) "
            "VALUES ('big@example.com', '$2b$04$' || repeat('a', 53), 'Big')"
        )
        # Written in the order people would write them, everyone's new tasks
        # side by side, so a page of one user's tasks spans many table pages.
        # Two thirds have a due_at, some in the past; every priority; a
        # fifth are tagged "work", a fifth "home" and one of 50 errands.
        conn.execute(
            "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at, "
            "                   due_at, priority, tags) "
            "SELECT u.id, 'task ' || g, CASE WHEN g %% 2 = 0 THEN 'details ' || g END, "
            "       g %% 3 = 0, now() - g * interval '1 minute', "
            "       now() - g * interval '30 seconds', "
            "       CASE WHEN g %% 3 <> 1 THEN now() + (g - 20) * interval '1 hour' END, "
            "       (ARRAY['none', 'low', 'medium', 'high'])[g %% 4 + 1], "
            "       CASE g %% 5 WHEN 0 THEN ARRAY['work'] "
            "                   WHEN 1 THEN ARRAY['home', 'Errand ' || g %% 50] "
            "                   ELSE '{}' END "
            "FROM users AS u CROSS JOIN generate_series(1, %s) AS g "
            "WHERE g <= %s OR u.email = 'big@example.com' "
            "ORDER BY g DESC, u.id",
            (BIG_USER_TASKS, TASKS_PER_USER),
        )
        conn.execute("ANALYZE users")
        conn.execute("ANALYZE tasks")
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def sample(big_database) -> dict:
    with psycopg.connect(big_database) as conn:
        row = conn.execute(
            "SELECT id, user_id, title, created_at, updated_at, version, due_at, priority "
            "FROM tasks WHERE due_at IS NOT NULL ORDER BY created_at OFFSET 54321 LIMIT 1"
        ).fetchone()
    keys = ("id", "user_id", "title", "created_at", "updated_at", "version", "due_at", "priority")
    return dict(zip(keys, row, strict=True))


@pytest.fixture(scope="module")
def big_user(big_database) -> str:
    with psycopg.connect(big_database) as conn:
        return conn.execute("SELECT id FROM users WHERE email = 'big@example.com'").fetchone()[0]


NO_FILTERS = {
    "completed": None,
    "q": None,
    "priorities": None,
    "tags": None,
    "due_after": None,
    "due_before": None,
    "overdue": None,
}
EVERY_FILTER = {
    "completed": False,
    "priorities": ["high", "medium"],
    "due_after": datetime(2000, 1, 1, tzinfo=UTC),
    "due_before": datetime(2100, 1, 1, tzinfo=UTC),
    "overdue": True,
}


def params_for(name: str, s: dict, **filters) -> list:
    """The statement's arguments in $n order, from its header's names."""
    query = QUERIES[name]
    if query.sort is not None:
        cursor = {"after_value": s[query.sort.key.lstrip("-")], "after_id": s["id"]}
        given = {"user_id": s["user_id"], **NO_FILTERS, **filters, "limit": 51, **cursor}
    else:
        given = {
            "id": s["id"],
            "user_id": s["user_id"],
            "if_match": [s["version"]],
            "title": "t",
            "description_sent": True,
            "description": None,
            "completed": True,
            "priority": "high",
            "due_at_sent": True,
            "due_at": None,
            "remind_at_sent": False,
            "remind_at": None,
            "tags": ["work"],
            "repeat_sent": False,
            "repeat": None,
            "repeat_checked": False,
            "max_tasks": 10_000,
        }
    return [given[n] for n in query.names]


def plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(
    url: str, name: str, params: list, mode: str, analyze: bool = False, setup: tuple = ()
) -> list[dict]:
    """The plan's nodes; `setup` runs first, in the same transaction, which
    is rolled back."""
    options = sql.SQL("ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON")
    with psycopg.connect(url) as conn:
        for statement in setup:
            conn.execute(statement)
        conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Literal(mode)))
        conn.execute(sql.SQL("PREPARE q AS {}").format(sql.SQL(QUERIES[name].sql.rstrip(";\n "))))
        placeholders = sql.SQL(", ").join(sql.Literal(p) for p in params)
        (doc,) = conn.execute(
            sql.SQL("EXPLAIN ({}) EXECUTE q({})").format(options, placeholders)
        ).fetchone()
        conn.rollback()
    doc = json.loads(doc) if isinstance(doc, str) else doc
    return list(plan_nodes(doc[0]["Plan"]))


def test_every_sort_is_checked_on_both_pages_with_and_without_searches():
    listing = [q for q in QUERIES.values() if q.sort is not None]
    made = {(q.sort.key, tuple(s.param for s in q.search), q.after) for q in listing}
    assert made == {(*key, after) for key in _SORT_QUERIES for after in (False, True)}
    assert {key[1] for key in _SORT_QUERIES} == {(), ("q",), ("tags",), ("q", "tags")}


def test_there_is_data_enough(big_database):
    with psycopg.connect(big_database) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] >= 100_000
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 1000


MODES = ["force_custom_plan", "force_generic_plan"]
# Statements that read every row of the caller (their headers say so), and
# the indexes that hold exactly those rows.
READ_ALL_OF_THE_CALLERS = {"list_tags", "summarise_tasks"}
USER_BTREES = [
    "tasks_user_id_created_at_idx",
    "tasks_user_id_updated_at_idx",
    "tasks_user_id_title_idx",
    "tasks_user_id_due_at_idx",
    "tasks_user_id_priority_idx",
]


def _searching(*params: str) -> list[str]:
    return sorted(
        n for n, q in QUERIES.items() if q.sort and tuple(s.param for s in q.search) == params
    )


SEARCHES = sorted(name for name, q in QUERIES.items() if q.search)
Q_SEARCHES = _searching("q")
PLAIN_PAGES = _searching()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(set(QUERIES) - set(SEARCHES)))
def test_every_task_query_uses_its_index(big_database, sample, name, mode):
    nodes = explain(big_database, name, params_for(name, sample), mode)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    # Index Scan, Index Only Scan, or Bitmap Index Scan under a Bitmap Heap Scan.
    scans = [n for n in nodes if "Index Name" in n]
    named = QUERIES[name].index_name  # its `-- Index:` line, or its listing's Sort entry
    if name in READ_ALL_OF_THE_CALLERS:  # any btree on (user_id, ...) serves
        assert [n["Index Name"] for n in scans] in [[i] for i in USER_BTREES], nodes
    else:
        assert [n["Index Name"] for n in scans] == [named], nodes
    cond = scans[0].get("Index Cond", "")
    assert "user_id" in cond or "id = " in cond, cond
    if QUERIES[name].after:
        # The cursor is where the index scan starts, not a filter after it.
        assert re.search(r"ROW\(|\) [<>] \(", cond), cond


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PLAIN_PAGES)
def test_the_other_filters_keep_the_sorts_index_and_cursor(big_database, sample, name, mode):
    # Priority, due range, overdue and completed are checked on the caller's
    # rows as an index of them yields them. The generic plan, which a
    # prepared statement keeps, reads the sort's own index from the cursor
    # on. A custom plan knows the values: when it expects few matches (here
    # open, overdue, high or medium, in a range) it may read the caller's
    # rows off another of their indexes and sort the matches, which costs
    # at most the caller's rows too.
    nodes = explain(big_database, name, params_for(name, sample, **EVERY_FILTER), mode)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    scans = [n for n in nodes if "Index Name" in n]
    assert len(scans) == 1, nodes
    assert "user_id = " in scans[0]["Index Cond"]
    if mode == "force_custom_plan":
        assert scans[0]["Index Name"] in USER_BTREES, nodes
        return
    assert scans[0]["Index Name"] == QUERIES[name].index_name, nodes
    assert not [n for n in nodes if n["Node Type"] == "Sort"], nodes
    if QUERIES[name].after:
        assert re.search(r"ROW\(|\) [<>] \(", scans[0]["Index Cond"]), scans[0]


def claiming(users: int | None) -> tuple[str, ...]:
    """Setup that makes the statistics claim `users` users (None: the true ones)."""
    if users is None:
        return ()
    return (f"ALTER TABLE tasks ALTER user_id SET (n_distinct = {users})", "ANALYZE tasks")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", Q_SEARCHES)
@pytest.mark.parametrize("users", [None, 50_000])
def test_a_search_reads_the_trigram_index_for_the_caller_only(
    big_database, sample, name, mode, users
):
    # Also when the statistics say the average user has 2 or 3 tasks: a
    # generic plan would then read the caller's rows off a btree and filter
    # them by q, were the caller not named in a form only this index answers.
    params = params_for(name, sample, q="task 5")
    nodes = explain(big_database, name, params, mode, setup=claiming(users))
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    scans = [n for n in nodes if "Index Name" in n]
    # Not the sort's index with q as a filter: the matches, then the page.
    assert scans, nodes
    assert {n["Index Name"] for n in scans} == {TRIGRAM_INDEX}, nodes
    assert QUERIES[name].index_name == TRIGRAM_INDEX
    for scan in scans:
        assert "(ARRAY[user_id] @> " in scan["Index Cond"], scan  # the caller's
        if users is None:
            # With the true statistics, q's trigrams are in the index
            # condition too. With 2 tasks a user claimed, leaving out the
            # trigrams of a common q ("task 5": a tenth of all titles) is the
            # planner's right call, and the caller's entries are still all
            # it reads (in one CI run out of many, it made that call).
            assert " ~~ " in scan["Index Cond"], scan  # LIKE, q's trigrams


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", PLAIN_PAGES)
@pytest.mark.parametrize("q", ["ab", "%_!"])
def test_a_q_without_a_trigram_is_a_filter_on_the_callers_rows(big_database, sample, name, mode, q):
    # What the handler runs for such a q: never a GIN scan, which would read
    # every entry of the column when q has no trigram; one of the caller's
    # btree indexes, bounded by the caller's tasks.
    assert _SORT_QUERIES[QUERIES[name].sort.key, ()][QUERIES[name].after] == name
    nodes = explain(big_database, name, params_for(name, sample, q=q), mode)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    scans = [n for n in nodes if "Index Name" in n]
    assert len(scans) == 1, nodes
    assert scans[0]["Index Name"] != TRIGRAM_INDEX
    assert "user_id = " in scans[0]["Index Cond"]


def buffers(url: str, name: str, given: dict, mode: str) -> tuple[int, int]:
    """(shared buffers the statement touched, rows it returned), run once."""
    top = explain(url, name, [given[n] for n in QUERIES[name].names], mode, analyze=True)[0]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], top["Actual Rows"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("q", ["zebra", "task 0", "details task", "ask 250000"])
def test_a_search_that_matches_nothing_costs_about_what_a_plain_page_costs(
    big_database, big_user, mode, q
):
    page = {"user_id": big_user, **NO_FILTERS, "limit": 51}
    plain, rows = buffers(big_database, "list_tasks[-created_at]", page, mode)
    assert rows == 51
    name = _SORT_QUERIES["-created_at", ("q",)][0]
    search, rows = buffers(big_database, name, {**page, "q": q}, mode)
    assert rows == 0
    # Before the trigram index this read all 25,000 of the user's rows:
    # hundreds of times a page.
    assert search <= 2 * plain, (search, plain)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", _searching("tags"))
@pytest.mark.parametrize("users", [None, 50_000])
def test_a_tag_filter_reads_the_tags_index_for_the_caller_only(
    big_database, sample, name, mode, users
):
    # The keys name the caller and the tag together: no btree on user_id
    # can answer them, whatever the statistics say of tasks per user.
    params = params_for(name, sample, tags=["Home", "errand 7"])
    nodes = explain(big_database, name, params, mode, setup=claiming(users))
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    scans = [n for n in nodes if "Index Name" in n]
    assert [n["Index Name"] for n in scans] == [TAGS_INDEX], nodes
    assert QUERIES[name].index_name == TAGS_INDEX
    assert "tasks_tag_keys(" in scans[0]["Index Cond"], scans[0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", _searching("q", "tags"))
def test_q_with_a_tag_reads_only_the_search_indexes(big_database, sample, name, mode):
    params = params_for(name, sample, q="task 5", tags=["work"], **EVERY_FILTER)
    nodes = explain(big_database, name, params, mode)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    scans = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert scans, nodes
    assert scans <= {TRIGRAM_INDEX, TAGS_INDEX}, nodes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tags", [["nobody has this"], ["work", "home"], ["errand 3", "work"]])
@pytest.mark.parametrize("sort", ["-created_at", "due_at", "-priority"])
def test_a_tag_filter_that_matches_nothing_costs_about_what_a_plain_page_costs(
    big_database, big_user, mode, tags, sort
):
    # The big user has 5,000 tasks tagged "work" and 5,000 "home", none both.
    page = {"user_id": big_user, **NO_FILTERS, "limit": 51}
    plain, rows = buffers(big_database, _SORT_QUERIES[sort, ()][0], page, mode)
    assert rows == 51
    name = _SORT_QUERIES[sort, ("tags",)][0]
    tagged, rows = buffers(big_database, name, {**page, "tags": tags}, mode)
    assert rows == 0
    assert tagged <= 2 * plain, (tagged, plain)
