"""Keyset paging over ties (shared/API.md, "Listing"): when many tasks share
a sort value (created in the same microsecond, the same title, due date or
priority), walking the `Link` cursors returns every task exactly once, in
the documented order (ties by id, in the sort's direction; tasks without a
due_at last in both due_at orders, by id ascending), for every sort and
direction, page size, alias and the filters that change the statement.
A cursor that drops its id tie-break skips or repeats tasks here."""

from __future__ import annotations

import functools
import itertools
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import asyncpg
import pytest

from tests.helpers import TASKS, bearer, next_link, user_token

COUNT = 120  # the caller's tasks; another user gets the same 120
RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
SORTS = [
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "title",
    "-title",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
]
# 1 and 2 put a page edge inside every tie; 40 divides COUNT (the last
# page is full and no Link may follow it), 7 and 100 do not.
PAGE_SIZES = [1, 2, 7, 40, 100]

# One statement, so every task of both users shares one transaction's now():
# created_at and updated_at are equal to the microsecond within each group
# of 30 (or 40), the groups 1 microsecond apart; three titles; four due
# dates (one of them now(), so overdue) and none; four priorities. Each is
# spread by its own modulus, so the ties of one sort cut across another's.
SEED = """
INSERT INTO tasks (
    user_id, title, description, completed, completed_at, priority, due_at,
    tags, created_at, updated_at
)
SELECT
    owner.user_id,
    (ARRAY['alpha', 'bravo', 'charlie'])[g % 3 + 1],
    (ARRAY['buy milk', 'call mum'])[g % 2 + 1],
    g % 7 < 3,
    CASE WHEN g % 7 < 3 THEN now() END,
    (ARRAY['none', 'low', 'medium', 'high'])[g % 4 + 1],
    CASE WHEN g % 5 > 0 THEN now() + (g % 5 - 2) * interval '1 day' END,
    (ARRAY['{work}', '{home,Work}', '{}'])[g / 2 % 3 + 1]::text[],
    now() - (g % 4) * interval '1 microsecond',
    now() + (g % 3) * interval '1 microsecond'
FROM (VALUES ($1::uuid), ($2::uuid)) AS owner (user_id)
CROSS JOIN generate_series(0, $3::integer - 1) AS g
RETURNING user_id, id, title, description, completed, priority, due_at, tags,
    created_at, updated_at, now() AS seeded_at
"""


class Seeded(NamedTuple):
    token: str
    tasks: list[asyncpg.Record]  # the caller's
    others: set[str]  # the other user's ids: never listed
    seeded_at: datetime


@pytest.fixture
async def seeded(client, migrated_database) -> Seeded:
    ann = await user_token(client)
    bob = await user_token(client, "bob@example.com")
    conn = await asyncpg.connect(migrated_database)
    try:
        rows = await conn.fetch(SEED, uuid.UUID(ann.id), uuid.UUID(bob.id), COUNT)
    finally:
        await conn.close()
    mine = [r for r in rows if str(r["user_id"]) == ann.id]
    others = {str(r["id"]) for r in rows if str(r["user_id"]) == bob.id}
    assert len(mine) == len(others) == COUNT
    # The ties this test is about: every sort value is shared widely.
    for column in ("created_at", "updated_at", "title", "due_at", "priority"):
        assert max(Counter(r[column] for r in mine).values()) >= 24, column
    return Seeded(ann.token, mine, others, rows[0]["seeded_at"])


# --- the documented order -------------------------------------------------------


def _id(row: asyncpg.Record) -> uuid.UUID:
    # PostgreSQL orders uuids by their bytes, as Python orders UUID ints.
    return uuid.UUID(str(row["id"]))


def in_order(rows: list[asyncpg.Record], sort: str) -> list[asyncpg.Record]:
    """The tasks in `sort`'s order as API.md "Listing" gives it. The titles
    are lowercase ASCII, which the ICU root collation orders as Python does."""
    field, descending = sort.lstrip("-"), sort.startswith("-")
    if field == "due_at":
        dated = sorted((r for r in rows if r["due_at"]), key=lambda r: (r["due_at"], _id(r)))
        undated = sorted((r for r in rows if not r["due_at"]), key=_id)
        return (dated[::-1] if descending else dated) + undated
    if field == "priority":
        return sorted(rows, key=lambda r: (RANK[r["priority"]], _id(r)), reverse=descending)
    return sorted(rows, key=lambda r: (r[field], _id(r)), reverse=descending)


# --- walking and reporting --------------------------------------------------------


async def walk_pages(client, token: str, query: str, most: int) -> list[list[str]]:
    """The ids of each page from `query` on, following rel="next"; stops
    after `most` pages, so a cursor that never ends cannot hang the test."""
    url, pages = f"{TASKS}?{query}", []
    while url and len(pages) < most:
        resp = await client.get(url, headers=bearer(token))
        assert resp.status == 200, f"{query}, page {len(pages) + 1}: {await resp.text()}"
        pages.append([t["id"] for t in await resp.json()])
        link = next_link(resp)
        url = None if link is None else "?".join(urlsplit(link)[2:4])
    return pages


def _describe(row: asyncpg.Record, field: str) -> str:
    value = row[field]
    shown = value.isoformat() if isinstance(value, datetime) else value
    return f"{row['id']} ({field}={shown})"


def _pages(numbers: list[int]) -> str:
    shown = numbers if len(numbers) <= 6 else [*numbers[:3], "...", numbers[-1]]
    return ", ".join(map(str, shown))


def paging_problems(
    pages: list[list[str]],
    expected: list[asyncpg.Record],
    size: int,
    field: str,
    others: set[str],
) -> dict[str, list[str]]:
    """What is wrong with a walk, by kind, task by task: repeated, someone
    else's or filtered out, missing, out of order, pages of the wrong size."""
    byid = {str(r["id"]): r for r in expected}
    want = list(byid)
    got = list(itertools.chain.from_iterable(pages))
    where: dict[str, list[int]] = {}
    for number, page in enumerate(pages, 1):
        for task in page:
            where.setdefault(task, []).append(number)
    found: dict[str, list[str]] = {"came more than once": [], "not expected": [], "missing": []}
    for task, numbers in where.items():
        if task not in byid:
            whose = "the other user's" if task in others else "filtered out"
            found["not expected"].append(f"{task} ({whose}), on pages {_pages(numbers)}")
        elif len(numbers) > 1:
            found["came more than once"].append(
                f"{_describe(byid[task], field)}, {len(numbers)} times, on pages {_pages(numbers)}"
            )
    for position, task in enumerate(want):
        if task not in where:
            found["missing"].append(
                f"{_describe(byid[task], field)}, expected at position {position} "
                f"(page {position // size + 1})"
            )
    if not any(found.values()) and got != want:
        first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        found["out of order"] = [
            f"from position {first} (page {first // size + 1}): got "
            f"{_describe(byid[got[first]], field)}, expected {_describe(byid[want[first]], field)}"
        ]
    sizes = [len(p) for p in pages]
    full = [size] * (len(want) // size) + [len(want) % size] * bool(len(want) % size) or [0]
    if sizes != full:
        first = next(i for i, (a, b) in enumerate(itertools.zip_longest(sizes, full)) if a != b)
        found["page sizes"] = [
            f"{len(pages)} pages, expected {len(full)}; page {first + 1} has "
            f"{sizes[first] if first < len(sizes) else 'no page'}, expected "
            f"{full[first] if first < len(full) else 'no page'}"
        ]
    return {kind: lines for kind, lines in found.items() if lines}


async def walk_report(
    client, seeded: Seeded, query: str, sort: str, size: int, keep=None
) -> str | None:
    """Walk `query` `size` at a time; None if every expected task came once
    in order, else what went wrong, naming the query, sort, size and tasks."""
    expected = in_order([r for r in seeded.tasks if keep is None or keep(r)], sort)
    most = len(expected) // size + 3
    pages = await walk_pages(client, seeded.token, f"{query}&limit={size}", most)
    found = paging_problems(pages, expected, size, sort.lstrip("-"), seeded.others)
    if len(pages) == most:
        found = {"the cursor never ends": [f"a next page still after {most} pages"], **found}
    if not found:
        return None
    lines = [
        f"GET {TASKS}?{query}&limit={size} (sort {sort}, page size {size}): "
        f"{sum(map(len, pages))} tasks over {len(pages)} pages, expected {len(expected)}"
    ]
    for kind, items in found.items():
        lines.append(f"  {kind}: {len(items)}")
        lines += [f"    {item}" for item in items[:5]]
        lines += [f"    ... and {len(items) - 5} more"] * (len(items) > 5)
    return "\n".join(lines)


def assert_no_reports(reports: list[str | None]) -> None:
    failed = [r for r in reports if r]
    if failed:
        pytest.fail(f"{len(failed)} of {len(reports)} walks went wrong:\n" + "\n".join(failed))


# --- the tests --------------------------------------------------------------------


@pytest.mark.parametrize("sort", SORTS)
async def test_every_tied_task_comes_once_in_order(client, seeded, sort):
    assert_no_reports(
        [await walk_report(client, seeded, f"sort={sort}", sort, size) for size in PAGE_SIZES]
    )


ALIASES = [
    ("sort=created", "-created_at"),
    ("sort=updated", "-updated_at"),
    ("sort=title&order=desc", "-title"),
    ("sort=due_date", "due_at"),
    ("sort=due_date&sort_order=desc", "-due_at"),
    ("sort_by=priority", "-priority"),
    ("sort_by=created&order=asc", "created_at"),
    ("sort_by=updated_at&sort_order=asc", "updated_at"),
]


async def test_the_sort_aliases_page_ties_as_their_sort(client, seeded):
    assert_no_reports(
        [await walk_report(client, seeded, alias, sort, 7) for alias, sort in ALIASES]
    )


def _mentions(text: str, r: asyncpg.Record) -> bool:
    return text in r["title"].lower() or text in (r["description"] or "").lower()


def _tagged(tag: str, r: asyncpg.Record) -> bool:
    return tag in {t.lower() for t in r["tags"]}


def _due_by(now: datetime, r: asyncpg.Record) -> bool:
    # Due at the seed's now() or a day before: past by the time it lists.
    return r["due_at"] is not None and r["due_at"] <= now


def _due_from(day: datetime, r: asyncpg.Record) -> bool:
    return not r["completed"] and r["due_at"] is not None and r["due_at"] >= day


# Each filter that changes the statement or adds a condition to it, and
# which tasks it keeps (`now`: the seed's). The due dates are whole days
# from the seed's now(), so the seed's day starts between two of them.
FILTERS = {
    "completed=false": lambda r, now: not r["completed"],
    "q=milk": lambda r, now: _mentions("milk", r),  # through the trigram index
    "q=mi": lambda r, now: _mentions("mi", r),  # no trigram: checked as rows are read
    "tag=work": lambda r, now: _tagged("work", r),
    "q=milk&tag=WORK": lambda r, now: _mentions("milk", r) and _tagged("work", r),
    "priority=high,none": lambda r, now: r["priority"] in ("high", "none"),
    "overdue=true": lambda r, now: not r["completed"] and _due_by(now, r),
    "due_after={day}&due_before={year}&completed=false": lambda r, now: _due_from(_day(now), r),
}


def _day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("name", FILTERS)
async def test_filtered_ties_come_once_in_order(client, seeded, name):
    now = seeded.seeded_at
    day = _day(now)
    year = day + timedelta(days=365)
    query = name.format(day=quote(day.isoformat()), year=quote(year.isoformat()))
    keep = functools.partial(FILTERS[name], now=now)
    assert_no_reports(
        [await walk_report(client, seeded, f"{query}&sort={sort}", sort, 3, keep) for sort in SORTS]
    )
