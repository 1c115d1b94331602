"""Listing by the task details (shared/API.md, "Listing"): the filters
priority, tag, due_after, due_before and overdue, alone and combined with
completed and q; the sorts due_at, -due_at, priority and -priority walked
page by page; and none of it ever reaching another person's tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.helpers import TASKS, bearer, make_task, next_link, problem, user_token, walk

RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
NOW = datetime.now(UTC).replace(microsecond=0)


def at(hours: int) -> str:
    return (NOW + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


# (title, priority, due in hours from now or None, tags, completed)
TASKS_MADE = [
    ("pay rent", "high", -48, ["Home", "money"], False),  # overdue
    ("file taxes", "high", 24 * 30, ["money"], False),
    ("call mum", "medium", None, ["home"], False),
    ("old report", "low", -24, ["work"], True),  # past due, but done
    ("slides", "medium", 5, ["Work", "deck"], False),
    ("standup notes", "none", -1, ["work"], False),  # overdue
    ("water plants", "none", None, [], False),
    ("book flights", "low", 24 * 7, ["travel", "money"], False),
    ("review PR", "high", 5, ["work"], False),  # same due_at as slides
]


@pytest.fixture
async def ann(client):
    _, token = await user_token(client)
    for title, priority, due, tags, done in TASKS_MADE:
        due_at = at(due) if due is not None else None
        await make_task(
            client, token, title=title, priority=priority, due_at=due_at, tags=tags, completed=done
        )
    return token


async def listed(client, token: str, query: str) -> list[dict]:
    """Every task of the listing, walked 2 at a time."""
    tasks, _ = await walk(client, token, f"{query}&limit=2" if query else "limit=2")
    assert len({t["id"] for t in tasks}) == len(tasks), "a task came twice"
    return tasks


async def titles(client, token: str, query: str) -> set[str]:
    return {t["title"] for t in await listed(client, token, query)}


def due(task: dict) -> datetime | None:
    return datetime.fromisoformat(task["due_at"]) if task["due_at"] else None


async def test_priority_filters_one_or_several(client, ann):
    assert await titles(client, ann, "priority=high") == {"pay rent", "file taxes", "review PR"}
    both = await titles(client, ann, "priority=none,low")
    assert both == {"old report", "standup notes", "water plants", "book flights"}
    assert await titles(client, ann, "priority=low,none,low") == both


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tag=work", {"old report", "slides", "standup notes", "review PR"}),
        ("tag=WORK", {"old report", "slides", "standup notes", "review PR"}),
        ("tag=home", {"pay rent", "call mum"}),
        ("tag=money,home", {"pay rent"}),  # every one of them
        ("tag=%20Money%20,%20HOME", {"pay rent"}),
        ("tag=work,deck", {"slides"}),
        ("tag=nobody", set()),
        ("tag=work,travel", set()),
    ],
)
async def test_tag_filter_wants_every_tag_ignoring_case(client, ann, query, expected):
    assert await titles(client, ann, query) == expected


async def test_due_range_is_half_open_and_skips_tasks_without_a_due_at(client, ann):
    assert await titles(client, ann, f"due_before={at(5)}") == {
        "pay rent",
        "old report",
        "standup notes",
    }
    assert await titles(client, ann, f"due_after={at(5)}&due_before={at(6)}") == {
        "slides",
        "review PR",
    }
    later = await titles(client, ann, f"due_after={at(6)}")
    assert later == {"file taxes", "book flights"}
    assert await titles(client, ann, f"due_after={at(6)}&due_before={at(5)}") == set()


async def test_an_offset_whose_plus_arrived_unencoded_still_reads(client, ann):
    # Five hours from now, written in UTC+02:00.
    moment = (NOW + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    encoded = await titles(client, ann, f"due_after={quote(moment)}&due_before={at(6)}")
    raw = await titles(client, ann, f"due_after={moment}&due_before={at(6)}")  # + is a space
    assert encoded == raw == {"slides", "review PR"}


async def test_overdue_is_open_and_due_before_now(client, ann):
    assert await titles(client, ann, "overdue=true") == {"pay rent", "standup notes"}
    others = await titles(client, ann, "overdue=false")
    assert others == {t[0] for t in TASKS_MADE} - {"pay rent", "standup notes"}
    summary = await (await client.get(f"{TASKS}/summary", headers=bearer(ann))).json()
    assert summary["overdue"] == 2


async def test_filters_combine_with_each_other_and_with_completed_and_q(client, ann):
    assert await titles(client, ann, "tag=work&completed=false") == {
        "slides",
        "standup notes",
        "review PR",
    }
    assert await titles(client, ann, "tag=work&priority=high,medium") == {"slides", "review PR"}
    assert await titles(client, ann, "tag=money&q=ent") == {"pay rent"}
    assert await titles(client, ann, "q=re&priority=high") == {"pay rent", "review PR"}
    assert await titles(client, ann, "q=PR") == {"review PR"}  # 2 letters: the filter path
    assert await titles(client, ann, "q=pr&tag=work&overdue=false") == {"review PR"}
    query = f"priority=high&due_before={at(24)}&tag=work,WORK&completed=false&overdue=false"
    assert await titles(client, ann, query) == {"review PR"}
    assert await titles(client, ann, "completed=true&overdue=true") == set()


def by_due(tasks: list[dict], descending: bool) -> list[dict]:
    dated = sorted((t for t in tasks if t["due_at"]), key=lambda t: (due(t), t["id"]))
    undated = sorted((t for t in tasks if not t["due_at"]), key=lambda t: t["id"])
    # Those without a due_at come last both ways, by id ascending both ways.
    return (dated[::-1] if descending else dated) + undated


def by_priority(tasks: list[dict], descending: bool) -> list[dict]:
    return sorted(tasks, key=lambda t: (RANK[t["priority"]], t["id"]), reverse=descending)


ORDERS = {
    "due_at": lambda tasks: by_due(tasks, False),
    "-due_at": lambda tasks: by_due(tasks, True),
    "priority": lambda tasks: by_priority(tasks, False),
    "-priority": lambda tasks: by_priority(tasks, True),
}


@pytest.mark.parametrize("sort", ORDERS)
@pytest.mark.parametrize("extra", ["", "&tag=work", "&q=e", "&q=report", "&completed=false"])
async def test_each_new_sort_walks_every_task_once_in_order(client, ann, sort, extra):
    everything = await listed(client, ann, "sort=title")
    query = f"sort={sort}{extra}"
    expected_titles = await titles(client, ann, extra.lstrip("&"))
    expected = ORDERS[sort]([t for t in everything if t["title"] in expected_titles])
    got = await listed(client, ann, query)
    assert [t["id"] for t in got] == [t["id"] for t in expected], query


async def test_tasks_without_a_due_at_come_last_both_ways(client, ann):
    for sort in ("due_at", "-due_at", "due_date", "due_date&order=desc"):
        got = await listed(client, ann, f"sort={sort}")
        assert [t["due_at"] is None for t in got] == [False] * 7 + [True] * 2, sort
    soonest = await listed(client, ann, "sort_by=due_date")
    assert soonest[0]["title"] == "pay rent"
    top = await listed(client, ann, "sort_by=priority")  # highest first
    assert [t["priority"] for t in top] == sorted(
        (t[1] for t in TASKS_MADE), key=RANK.__getitem__, reverse=True
    )


async def test_a_cursor_holds_only_for_its_own_filters(client, ann):
    resp = await client.get(f"{TASKS}?sort=due_at&tag=work&limit=1", headers=bearer(ann))
    link = next_link(resp)
    cursor = link.split("cursor=")[1]
    for other in (
        "sort=due_at&tag=home",
        "sort=due_at",
        "sort=-due_at&tag=work",
        "sort=due_at&tag=work&priority=high",
        "sort=due_at&tag=work&overdue=true",
    ):
        resp = await client.get(f"{TASKS}?{other}&limit=1&cursor={cursor}", headers=bearer(ann))
        assert "cursor" in (await problem(resp, 422))["errors"], other
    resp = await client.get(
        f"{TASKS}?sort=due_at&tag=WORK&limit=1&cursor={cursor}", headers=bearer(ann)
    )
    assert resp.status == 200  # the same filter, spelled otherwise


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("priority=urgent", "priority"),
        ("priority=HIGH", "priority"),
        ("priority=", "priority"),
        ("priority=high,", "priority"),
        ("priority=high,,low", "priority"),
        ("tag=", "tag"),
        ("tag=work,", "tag"),
        ("tag=%20", "tag"),
        ("tag=" + "x" * 41, "tag"),
        ("tag=" + ",".join(f"t{i}" for i in range(21)), "tag"),
        ("tag=a%00b", "tag"),
        ("due_before=tomorrow", "due_before"),
        ("due_before=2027-01-01", "due_before"),
        ("due_after=2027-01-01T00:00:00", "due_after"),  # no offset
        ("due_after=0001-01-01T00:00:00Z", "due_after"),
        ("due_after=20270101T000000Z", "due_after"),  # basic format
        ("due_before=2027-W01-1T00:00:00Z", "due_before"),  # week date
        ("due_before=2027-001T00:00:00Z", "due_before"),  # ordinal date
        ("due_after=2027-01-01%2000:00:00Z", "due_after"),
        ("due_after=2027-01-01T00:00:00%2B0100", "due_after"),
        ("due_before=2027-01-01T00:00:00%200100", "due_before"),
        ("overdue=yes", "overdue"),
        ("overdue=1", "overdue"),
        ("sort=due", "sort"),
        ("sort=+priority", "sort"),
    ],
)
async def test_a_bad_filter_is_422(client, ann, query, field):
    resp = await client.get(f"{TASKS}?{query}", headers=bearer(ann))
    body = await problem(resp, 422)
    assert list(body["errors"]) == [field], body


async def test_nobody_elses_tasks_ever_match(client, ann):
    # Bob has tasks with the very same tags, priorities and due dates.
    bob_id, bob = await user_token(client, "bob@example.com")
    for title, priority, due_in, tags, done in TASKS_MADE:
        due_at = at(due_in) if due_in is not None else None
        await make_task(
            client,
            bob,
            title="bob " + title,
            priority=priority,
            due_at=due_at,
            tags=tags,
            completed=done,
        )
    queries = [
        "tag=work",
        "tag=money,home",
        "priority=high",
        "overdue=true",
        f"due_before={at(100)}",
        "sort=due_at",
        "sort=-priority&tag=work&q=re",
    ]
    for query in queries:
        for task in await listed(client, ann, query):
            assert not task["title"].startswith("bob "), query
        for task in await listed(client, bob, query):
            assert task["title"].startswith("bob "), query
            assert task["user_id"] == bob_id
    tags = await (await client.get("/api/tags", headers=bearer(ann))).json()
    assert {t["name"].lower(): t["count"] for t in tags}["work"] == 4
    summary = await (await client.get(f"{TASKS}/summary", headers=bearer(bob))).json()
    assert summary["total"] == len(TASKS_MADE)
