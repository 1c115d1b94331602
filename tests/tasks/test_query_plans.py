"""With 100k tasks over 1000 users (and one user with 25k more), every task
query reads the caller's rows through an index (the one its header names),
never a sequential scan; a keyset page starts at the cursor inside the sort's
index, so a deep page costs what the first one does; a selective filter
(overdue, due range, priority) reads its own index; and a search (q, tag)
reads its GIN index, so one that matches nothing costs about what a plain
page does, however many tasks the caller has. The listing is planned as
list_tasks() (migration 0021) plans it, with custom plans, though the
session asks for generic ones; the other statements in both modes."""

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
from tests.conftest import MIGRATIONS_DIR, create_database, drop_database
from tests.helpers import listing_plan

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
        # Two thirds have a due_at, some in the past; none, low and medium
        # priorities, and high only on 25 of the big user's; a fifth are
        # tagged "work", a fifth "home" and one of 50 errands.
        conn.execute(
            "INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at, "
            "                   due_at, priority, tags) "
            "SELECT u.id, 'task ' || g, CASE WHEN g %% 2 = 0 THEN 'details ' || g END, "
            "       g %% 3 = 0, now() - g * interval '1 minute', "
            "       now() - g * interval '30 seconds', "
            "       CASE WHEN g %% 3 <> 1 THEN now() + (g - 20) * interval '1 hour' END, "
            "       CASE WHEN g %% 1000 = 500 THEN 'high' "
            "            ELSE (ARRAY['none', 'low', 'medium'])[g %% 4 %% 3 + 1] END, "
            "       CASE g %% 5 WHEN 0 THEN ARRAY['work'] "
            "                   WHEN 1 THEN ARRAY['home', 'Errand ' || g %% 50] "
            "                   ELSE '{}' END "
            "FROM users AS u CROSS JOIN generate_series(1, %s) AS g "
            "WHERE g <= %s OR u.email = 'big@example.com' "
            "ORDER BY g DESC, u.id",
            (BIG_USER_TASKS, TASKS_PER_USER),
        )
        # Deleted tasks: tombstones over the last 60 days, a few expired.
        conn.execute(
            "INSERT INTO task_tombstones (task_id, user_id, deleted_at) "
            "SELECT gen_random_uuid(), u.id, now() - (g % 60) * interval '1 day' "
            "FROM users AS u CROSS JOIN generate_series(1, 20) AS g"
        )
        conn.execute("ANALYZE users")
        conn.execute("ANALYZE tasks")
        conn.execute("ANALYZE task_tombstones")
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


SORT_INDEXES = {
    "created_at": "tasks_user_id_created_at_idx",
    "updated_at": "tasks_user_id_updated_at_idx",
    "title": "tasks_user_id_title_idx",
    "due_at": "tasks_user_id_due_at_idx",
    "priority": "tasks_user_id_priority_idx",
}
SORTS = sorted(key for column in SORT_INDEXES for key in (column, "-" + column))
LISTINGS = {"list_tasks"}
# The session's, which list_tasks()'s own plan mode overrides.
SESSION_MODE = "force_generic_plan"
MODES = ["force_custom_plan", "force_generic_plan"]


def page_for(sort: str, s: dict, after: bool = False, **given) -> dict:
    """A listing's arguments by name: the sample's caller, a page after the
    sample's row or the first page, the filters given."""
    column = sort.lstrip("-")
    timestamp = column in ("created_at", "updated_at", "due_at")
    return {
        "user_id": s["user_id"],
        "sort": sort,
        **NO_FILTERS,
        "indexed_q": None,
        "limit": 51,
        "after_at": s[column] if after and timestamp else None,
        "after_text": s[column] if after and not timestamp else None,
        "after_id": s["id"] if after else None,
        **given,
    }


def params_for(name: str, s: dict) -> list:
    """A statement's arguments in $n order, from its header's names."""
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
        "retention_seconds": 30 * 86400.0,
        "after_xid": "0",  # a first sync: every change of the caller's
        "after_id": "00000000-0000-0000-0000-000000000000",
        "limit": 101,
        "deletions": True,
    }
    return [given[n] for n in QUERIES[name].names]


def plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def seq_scans(nodes: list[dict]) -> list[dict]:
    """The sequential scans of our tables (a catalog of a few rows, such as
    pg_database, which list_changes reads, is not one of them)."""
    return [
        n
        for n in nodes
        if n["Node Type"] == "Seq Scan" and not n["Relation Name"].startswith("pg_")
    ]


def explain(
    url: str, name: str, params: list | dict, mode: str, analyze: bool = False, setup: tuple = ()
) -> list[dict]:
    """The plan's nodes; `setup` runs first, in the same transaction, which
    is rolled back. `params` by name are put in the header's order."""
    if isinstance(params, dict):
        params = [params[n] for n in QUERIES[name].names]
    options = sql.SQL("ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON")
    with psycopg.connect(url) as conn:
        for statement in setup:
            conn.execute(statement)
        conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Literal(mode)))
        conn.execute(sql.SQL("PREPARE q AS {}").format(sql.SQL(QUERIES[name].sql.rstrip(";\n "))))
        placeholders = sql.SQL(", ").join(sql.Literal(p) for p in params)
        execute = sql.SQL("EXECUTE q({})").format(placeholders)
        if name in LISTINGS:  # the plan of the statement inside list_tasks()
            doc = [listing_plan(conn, execute, analyze)[0]]
        else:
            (doc,) = conn.execute(sql.SQL("EXPLAIN ({}) ").format(options) + execute).fetchone()
        conn.rollback()
    doc = json.loads(doc) if isinstance(doc, str) else doc
    return list(plan_nodes(doc[0]["Plan"]))


def test_there_is_data_enough(big_database):
    with psycopg.connect(big_database) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] >= 100_000
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 1000


# Statements that read every row of the caller (their headers say so), and
# the indexes that hold exactly those rows.
READ_ALL_OF_THE_CALLERS = {"list_tags", "summarise_tasks"}
USER_BTREES = [*SORT_INDEXES.values(), "tasks_user_id_change_xid_idx"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(set(QUERIES) - LISTINGS))
def test_every_task_query_uses_its_index(big_database, sample, name, mode):
    nodes = explain(big_database, name, params_for(name, sample), mode)
    assert not seq_scans(nodes), nodes
    # Index Scan, Index Only Scan, or Bitmap Index Scan under a Bitmap Heap Scan.
    scans = [n for n in nodes if "Index Name" in n]
    named = QUERIES[name].index_name  # its `-- Index:` line
    every_named = re.findall(r"\b\w+_(?:idx|pkey|key)\b", QUERIES[name].index)
    if name in READ_ALL_OF_THE_CALLERS:  # any btree on (user_id, ...) serves
        assert [n["Index Name"] for n in scans] in [[i] for i in USER_BTREES], nodes
    elif len(every_named) > 1:  # several tables: each read through one it names
        assert named in [n["Index Name"] for n in scans], nodes
        assert {n["Index Name"] for n in scans} <= set(every_named), nodes
    else:
        assert [n["Index Name"] for n in scans] == [named], nodes
    cond = scans[0].get("Index Cond", "")
    assert "user_id" in cond or "id = " in cond, cond


CURSOR_IN_THE_INDEX = re.compile(r"ROW\(|\) [<>] \(")


@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_reads_its_index_from_the_cursor(big_database, sample, big_user, sort, after):
    # The other sorts' CASE arms and the NULL filters fold away in the plan
    # the service runs: the sort's own index from the cursor on. For a user
    # with 100 tasks the planner may fetch the rest of them through it and
    # sort them; for one with 25,000 it reads the index in order.
    index = SORT_INDEXES[sort.lstrip("-")]
    nodes = explain(big_database, "list_tasks", page_for(sort, sample, after), SESSION_MODE)
    scans = [n for n in nodes if "Index Name" in n]
    assert [n["Index Name"] for n in scans] == [index], nodes
    assert "user_id = " in scans[0]["Index Cond"]
    assert bool(CURSOR_IN_THE_INDEX.search(scans[0]["Index Cond"])) == after, scans[0]
    page = page_for(sort, {**sample, "user_id": big_user}, after)
    nodes = explain(big_database, "list_tasks", page, SESSION_MODE)
    assert [n["Node Type"] for n in nodes] == ["Limit", "Index Scan"], nodes
    scan = nodes[1]
    assert scan["Index Name"] == index, scan
    assert scan["Scan Direction"] == ("Backward" if sort.startswith("-") else "Forward"), scan
    assert "Filter" not in scan, scan
    assert bool(CURSOR_IN_THE_INDEX.search(scan["Index Cond"])) == after, scan


@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("sort", SORTS)
def test_the_other_filters_keep_to_the_callers_rows(big_database, sample, sort, after):
    # Priority, due range, overdue and completed are checked on the caller's
    # rows as an index of them yields them: the sort's, from the cursor on,
    # or, when the planner expects few matches, another of the caller's
    # btrees, whose matches it sorts (at most the caller's rows).
    page = page_for(sort, sample, after, **EVERY_FILTER)
    nodes = explain(big_database, "list_tasks", page, SESSION_MODE)
    assert not seq_scans(nodes), nodes
    scans = [n for n in nodes if "Index Name" in n]
    assert len(scans) == 1, nodes
    assert scans[0]["Index Name"] in USER_BTREES, nodes
    assert "user_id = " in scans[0]["Index Cond"]


def claiming(users: int | None) -> tuple[str, ...]:
    """Setup that makes the statistics claim `users` users (None: the true ones)."""
    if users is None:
        return ()
    return (f"ALTER TABLE tasks ALTER user_id SET (n_distinct = {users})", "ANALYZE tasks")


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("users", [None, 50_000])
def test_a_search_reads_the_trigram_index_for_the_caller_only(big_database, sample, sort, users):
    # Also when the statistics say the average user has 2 or 3 tasks: a
    # plan would then read the caller's rows off a btree and filter them by
    # q, were the caller not named in a form only this index answers.
    page = page_for(sort, sample, True, q="task 5", indexed_q="task 5")
    nodes = explain(big_database, "list_tasks", page, SESSION_MODE, setup=claiming(users))
    assert not seq_scans(nodes), nodes
    scans = [n for n in nodes if "Index Name" in n]
    # Not the sort's index with q as a filter: the matches, then the page.
    assert scans, nodes
    assert {n["Index Name"] for n in scans} == {TRIGRAM_INDEX}, nodes
    for scan in scans:
        assert "(ARRAY[user_id] @> " in scan["Index Cond"], scan  # the caller's
        if users is None:
            # With the true statistics, q's trigrams are in the index
            # condition too. With 2 tasks a user claimed, leaving out the
            # trigrams of a common q ("task 5": a tenth of all titles) is the
            # planner's right call, and the caller's entries are still all
            # it reads.
            assert " ~~ " in scan["Index Cond"], scan  # LIKE, q's trigrams


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("q", ["ab", "%_!"])
def test_a_q_without_a_trigram_is_a_filter_on_the_callers_rows(big_database, sample, sort, q):
    # What the handler runs for such a q: never a GIN scan, which would read
    # every entry of the column when q has no trigram; one of the caller's
    # btree indexes, bounded by the caller's tasks.
    nodes = explain(big_database, "list_tasks", page_for(sort, sample, q=q), SESSION_MODE)
    assert not seq_scans(nodes), nodes
    scans = [n for n in nodes if "Index Name" in n]
    assert len(scans) == 1, nodes
    assert scans[0]["Index Name"] in USER_BTREES, nodes
    assert "user_id = " in scans[0]["Index Cond"]


def buffers(url: str, name: str, page: dict, setup: tuple = ()) -> tuple[int, int]:
    """(shared buffers the statement touched, rows it returned), run once."""
    top = explain(url, name, page, SESSION_MODE, analyze=True, setup=setup)[0]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], top["Actual Rows"]


def plain_page(url: str, big_user: str, sort: str) -> int:
    """The buffers a first page of the big user's costs, unfiltered."""
    plain, rows = buffers(url, "list_tasks", page_for(sort, {"user_id": big_user}))
    assert rows == 51
    return plain


@pytest.mark.parametrize("q", ["zebra", "task 0", "details task", "ask 250000"])
def test_a_search_that_matches_nothing_costs_about_what_a_plain_page_costs(
    big_database, big_user, q
):
    plain = plain_page(big_database, big_user, "-created_at")
    page = page_for("-created_at", {"user_id": big_user}, q=q, indexed_q=q)
    search, rows = buffers(big_database, "list_tasks", page)
    assert rows == 0
    # Before the trigram index this read all 25,000 of the user's rows:
    # hundreds of times a page.
    assert search <= 2 * plain, (search, plain)


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("users", [None, 50_000])
def test_a_tag_filter_reads_the_tags_index_for_the_caller_only(big_database, sample, sort, users):
    # The keys name the caller and the tag together: no btree on user_id
    # can answer them, whatever the statistics say of tasks per user.
    page = page_for(sort, sample, True, tags=["Home", "errand 7"])
    nodes = explain(big_database, "list_tasks", page, SESSION_MODE, setup=claiming(users))
    assert not seq_scans(nodes), nodes
    scans = [n for n in nodes if "Index Name" in n]
    assert [n["Index Name"] for n in scans] == [TAGS_INDEX], nodes
    assert "tasks_tag_keys(" in scans[0]["Index Cond"], scans[0]


@pytest.mark.parametrize("sort", SORTS)
def test_q_with_a_tag_reads_only_the_search_indexes(big_database, sample, sort):
    page = page_for(sort, sample, True, q="task 5", indexed_q="task 5", tags=["work"])
    nodes = explain(big_database, "list_tasks", {**page, **EVERY_FILTER}, SESSION_MODE)
    assert not seq_scans(nodes), nodes
    scans = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert scans, nodes
    assert scans <= {TRIGRAM_INDEX, TAGS_INDEX}, nodes


@pytest.mark.parametrize("tags", [["nobody has this"], ["work", "home"], ["errand 3", "work"]])
@pytest.mark.parametrize("sort", ["-created_at", "due_at", "-priority"])
def test_a_tag_filter_that_matches_nothing_costs_about_what_a_plain_page_costs(
    big_database, big_user, tags, sort
):
    # The big user has 5,000 tasks tagged "work" and 5,000 "home", none both.
    plain = plain_page(big_database, big_user, sort)
    page = page_for(sort, {"user_id": big_user}, tags=tags)
    tagged, rows = buffers(big_database, "list_tasks", page)
    assert rows == 0
    assert tagged <= 2 * plain, (tagged, plain)


FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
# Nothing overdue anywhere: every task due in the past moved a month on,
# and the statistics told (all rolled back after the test).
NOTHING_OVERDUE = (
    "UPDATE tasks SET due_at = due_at + interval '30 days' WHERE due_at < now()",
    "ANALYZE tasks",
)
SELECTIVE = {
    "overdue, none is": ({"overdue": True}, NOTHING_OVERDUE, 0),
    "due_before far in the past": ({"due_before": FAR_PAST}, (), 0),
    "due_after far in the future": ({"due_after": FAR_FUTURE}, (), 0),
    "a priority 25 of the caller's have": ({"priorities": ["high"]}, (), 25),
    "open, high, due far ahead": (
        {"completed": False, "priorities": ["high"], "due_after": FAR_FUTURE},
        (),
        0,
    ),
    "low or high, due before 2000": (
        {"priorities": ["low", "high"], "due_before": FAR_PAST},
        (),
        0,
    ),
}


@pytest.mark.parametrize("sort", ["-created_at", "title", "due_at", "-priority"])
@pytest.mark.parametrize("case", sorted(SELECTIVE))
def test_a_selective_filter_costs_under_three_plain_pages(big_database, big_user, case, sort):
    # Read in the sort's order, a filter that matches little would walk all
    # 25,000 of the big user's rows to fill a page; its own index finds the
    # few matches, which are then sorted.
    given, setup, matches = SELECTIVE[case]
    plain = plain_page(big_database, big_user, sort)
    page = page_for(sort, {"user_id": big_user}, **given)
    filtered, rows = buffers(big_database, "list_tasks", page, setup)
    assert rows == matches
    assert filtered < 3 * plain, (filtered, plain)


def _sync_page(user_id: str, after_xid: str) -> dict:
    return {
        "user_id": user_id,
        "after_xid": after_xid,
        "after_id": "00000000-0000-0000-0000-000000000000",
        "limit": 101,
        "deletions": True,
    }


@pytest.mark.parametrize("changed", [0, 3])
def test_an_incremental_sync_reads_only_its_changes(big_database, big_user, changed):
    # The sync's floor is an id taken before the few edits (made in the
    # explained transaction, rolled back): the big user's 25,000 other tasks
    # are older, and the change index starts the read at the floor.
    with psycopg.connect(big_database, autocommit=True) as conn:
        floor = int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
    edits = (
        f"UPDATE tasks SET title = 'edited' WHERE id IN (SELECT id FROM tasks "
        f"WHERE user_id = '{big_user}' ORDER BY created_at LIMIT {changed})",
    )
    page = _sync_page(big_user, str(floor))
    nodes = explain(big_database, "list_changes", page, SESSION_MODE, setup=edits)
    assert not seq_scans(nodes), nodes
    [tasks_scan] = [n for n in nodes if n.get("Relation Name") == "tasks"]
    assert tasks_scan["Index Name"] == "tasks_user_id_change_xid_idx"
    assert CURSOR_IN_THE_INDEX.search(tasks_scan["Index Cond"]), tasks_scan
    cost, rows = buffers(big_database, "list_changes", page, setup=edits)
    assert rows == max(changed, 1)  # with no change, the snapshot's row alone
    assert cost <= plain_page(big_database, big_user, "-created_at"), cost


def test_a_first_sync_page_costs_about_a_plain_page(big_database, big_user):
    cost, rows = buffers(big_database, "list_changes", _sync_page(big_user, "0"))
    assert rows == 101
    # Twice the rows of a plain listing's page (51), read the same way.
    assert cost <= 3 * plain_page(big_database, big_user, "-created_at"), cost


def test_the_event_poll_reads_the_change_indexes(big_database, big_user):
    # One statement a poll for every open stream's account: each is looked
    # up in the change indexes from the previous poll's snapshot on.
    poll = load_queries(DEFAULT_SQL_DIR / "queries")["changed_accounts"]
    with psycopg.connect(big_database, autocommit=True) as conn:
        xmax = int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        users = [row[0] for row in conn.execute("SELECT id FROM users LIMIT 200").fetchall()]
        users.append(big_user)
        conn.execute(sql.SQL("PREPARE poll AS {}").format(sql.SQL(poll.sql.rstrip(";\n "))))
        execute = sql.SQL(
            "EXPLAIN (FORMAT JSON) EXECUTE poll({}::uuid[], {}::xid8, {}::xid8, {}::xid8[])"
        )
        args = (sql.Literal([str(u) for u in users]), sql.Literal(str(xmax)))
        running = (sql.Literal(str(xmax - 5)), sql.Literal([str(xmax - 5)]))
        (doc,) = conn.execute(execute.format(*args, *running)).fetchone()
    nodes = list(plan_nodes(doc[0]["Plan"]))
    assert not seq_scans(nodes), nodes
    read = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert read == {"tasks_user_id_change_xid_idx", "task_tombstones_user_id_change_xid_idx"}
