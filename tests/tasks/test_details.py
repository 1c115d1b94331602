"""A task's details (migration 0010): priority, due and reminder times,
tags and the completion time, through every write route, against the real
database and its CHECKs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
import pytest
from marshmallow import ValidationError

from service.tasks.schemas import MOMENT_PATTERN, TaskCreateSchema
from tests.helpers import TASKS, bearer, make_task, problem, user_token


@pytest.fixture
async def ann(client):
    return await user_token(client)


def utc(value: str) -> datetime:
    assert value.endswith("Z"), value  # answered in UTC, whatever offset was sent
    return datetime.fromisoformat(value)


async def create(client, token: str, **fields) -> dict:
    resp = await client.post(TASKS, json={"title": "t", **fields}, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def patch(client, token: str, task_id: str, body: dict) -> dict:
    resp = await client.patch(f"{TASKS}/{task_id}", json=body, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_create_with_every_detail(client, ann):
    task = await create(
        client,
        ann.token,
        priority="high",
        due_at="2027-03-01T09:30:00+01:00",
        remind_at="2027-03-01T07:00:00-05:00",
        tags=["  Work ", "home", "WORK", "Urgent"],
    )
    assert task["priority"] == "high"
    assert utc(task["due_at"]) == datetime(2027, 3, 1, 8, 30, tzinfo=UTC)
    assert utc(task["remind_at"]) == datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    # Trimmed; "WORK" is "Work" again: the first spelling stays, in order.
    assert task["tags"] == ["Work", "home", "Urgent"]
    assert task["completed_at"] is None
    got = await (await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))).json()
    assert got == task


async def test_a_task_created_completed_has_a_completion_time(client, ann):
    task = await create(client, ann.token, completed=True)
    assert utc(task["completed_at"]) >= utc(task["created_at"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"priority": 3}, "priority"),
        ({"priority": None}, "priority"),
        ({"priority": "HIGH"}, "priority"),
        ({"due_at": "2027-03-01T09:30:00"}, "due_at"),  # no offset
        ({"due_at": "2027-03-01"}, "due_at"),
        ({"due_at": "tomorrow"}, "due_at"),
        ({"due_at": 1767225600}, "due_at"),
        ({"remind_at": "2027-02-30T10:00:00Z"}, "remind_at"),
        ({"due_at": "0001-01-01T00:30:00+01:00"}, "due_at"),  # year 0 in UTC
        ({"due_at": "9999-12-31T23:00:00-05:00"}, "due_at"),  # year 10000 in UTC
        ({"tags": ["\u00a0" + "x" * 40]}, "tags"),  # 41 as sent
        ({"tags": "work"}, "tags"),
        ({"tags": [1]}, "tags"),
        ({"tags": [None]}, "tags"),
        ({"tags": ["   "]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": ["x" * 41]}, "tags"),
        ({"tags": ["two\nlines"]}, "tags"),
        ({"tags": ["\u200b"]}, "tags"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": ["a", "A", " a", *(f"t{i}" for i in range(18))]}, "tags"),  # 21 as sent
        ({"tags": None}, "tags"),
    ],
)
async def test_a_bad_detail_is_a_422_on_its_field_and_stores_nothing(
    client, ann, migrated_database, body, field
):
    resp = await client.post(TASKS, json={"title": "t", **body}, headers=bearer(ann.token))
    errors = (await problem(resp, 422))["errors"]
    assert list(errors) == [field]
    with psycopg.connect(migrated_database) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0


# Forms datetime.fromisoformat reads that are not RFC 3339 (API.md: "no
# basic format, no week dates").
NOT_RFC_3339 = [
    "20270101T000000Z",
    "2027-W01-1T00:00:00Z",
    "2027-001T00:00:00Z",
    "2027-01-01 00:00:00Z",
    "2027-01-01T00:00:00+0100",
    "2027-01-01T00:00Z",
    "2027-01-01T00:00:00.5",
]


async def test_only_rfc_3339_timestamps_are_taken_by_every_write(client, ann):
    task = await create(client, ann.token, due_at="2027-01-01T00:00:00Z")
    url = f"{TASKS}/{task['id']}"
    for value in NOT_RFC_3339:
        for field in ("due_at", "remind_at"):
            for method, path in (("POST", TASKS), ("PUT", url), ("PATCH", url)):
                resp = await client.request(
                    method, path, json={"title": "t", field: value}, headers=bearer(ann.token)
                )
                errors = (await problem(resp, 422))["errors"]
                assert list(errors) == [field], (method, value)
    listed = await (await client.get(TASKS, headers=bearer(ann.token))).json()
    assert listed == [task]
    # Lower-case t and z are RFC 3339 too (its grammar is ABNF's, case-blind).
    changed = await patch(client, ann.token, task["id"], {"due_at": "2027-01-02t03:04:05.6z"})
    assert changed["due_at"] == "2027-01-02T03:04:05.600000Z"


async def test_the_limits_themselves_are_accepted(client, ann):
    tags = [f"{i:02}" + "x" * 38 for i in range(20)]
    task = await create(client, ann.token, tags=tags)
    assert task["tags"] == tags
    early, late = "0002-01-01T00:00:00+14:00", "9998-12-31T23:59:59-12:00"
    task = await create(client, ann.token, due_at=early, remind_at=late)
    assert task["due_at"] == "0001-12-31T10:00:00Z"
    assert task["remind_at"] == "9999-01-01T11:59:59Z"


async def test_patch_changes_and_clears_details(client, ann):
    task = await create(
        client, ann.token, priority="low", due_at="2027-01-01T00:00:00Z", tags=["a", "b"]
    )
    changed = await patch(
        client, ann.token, task["id"], {"priority": "medium", "tags": ["c"], "due_at": None}
    )
    assert changed["priority"] == "medium"
    assert changed["tags"] == ["c"]
    assert changed["due_at"] is None
    # What was not sent keeps its value.
    kept = await patch(client, ann.token, task["id"], {"remind_at": "2027-01-02T08:00:00Z"})
    assert (kept["priority"], kept["tags"], kept["due_at"]) == ("medium", ["c"], None)
    assert utc(kept["remind_at"]) == datetime(2027, 1, 2, 8, tzinfo=UTC)
    assert (await patch(client, ann.token, task["id"], {"tags": []}))["tags"] == []


async def test_put_keeps_the_details_it_was_not_sent(client, ann):
    task = await create(client, ann.token, priority="high", tags=["x"])
    resp = await client.put(
        f"{TASKS}/{task['id']}", json={"title": "renamed"}, headers=bearer(ann.token)
    )
    replaced = await resp.json()
    assert (replaced["title"], replaced["priority"], replaced["tags"]) == ("renamed", "high", ["x"])


async def test_completion_time_is_set_kept_and_cleared(client, ann):
    task, _ = await make_task(client, ann.token)
    done = await patch(client, ann.token, task["id"], {"completed": True})
    stamped = utc(done["completed_at"])
    # Completing again, or changing something else, keeps the time.
    again = await patch(client, ann.token, task["id"], {"completed": True, "priority": "low"})
    assert utc(again["completed_at"]) == stamped
    reopened = await patch(client, ann.token, task["id"], {"completed": False})
    assert reopened["completed_at"] is None

    toggle = f"{TASKS}/{task['id']}/complete"
    toggled = await (await client.patch(toggle, headers=bearer(ann.token))).json()
    assert toggled["completed"] is True
    assert utc(toggled["completed_at"]) > stamped
    toggled = await (await client.patch(toggle, headers=bearer(ann.token))).json()
    assert (toggled["completed"], toggled["completed_at"]) == (False, None)
    put = await client.put(
        f"{TASKS}/{task['id']}", json={"title": "t", "completed": True}, headers=bearer(ann.token)
    )
    assert (await put.json())["completed_at"] is not None


async def test_completed_at_is_read_only(client, ann):
    """Sent back with the rest of a task, it is ignored, like id."""
    task = await create(client, ann.token)
    sent = {**task, "title": "again", "completed_at": "2020-01-01T00:00:00Z"}
    for key in ("id", "user_id", "created_at", "updated_at"):
        sent.pop(key)
    resp = await client.put(f"{TASKS}/{task['id']}", json=sent, headers=bearer(ann.token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["completed_at"] is None


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("UPDATE tasks SET priority = 'urgent'", "tasks_priority_check"),
        ("UPDATE tasks SET tags = ARRAY['a', 'A']", "tasks_tags_check"),
        ("UPDATE tasks SET tags = ARRAY[' a']", "tasks_tags_check"),
        ("UPDATE tasks SET tags = ARRAY[NULL]::text[]", "tasks_tags_check"),
        ("UPDATE tasks SET completed_at = now(), completed = false", "tasks_completed_at_check"),
    ],
)
async def test_the_database_holds_the_same_rules(client, ann, migrated_database, sql, constraint):
    await create(client, ann.token)
    with (
        psycopg.connect(migrated_database) as conn,
        pytest.raises(psycopg.errors.CheckViolation) as info,
    ):
        conn.execute(sql)
    assert info.value.diag.constraint_name == constraint


@pytest.mark.parametrize(
    "year",
    [
        "0001",
        "0002",
        "0009",
        "0010",
        "0099",
        "0100",
        "0999",
        "1000",
        "2026",
        "8999",
        "9000",
        "9899",
        "9900",
        "9989",
        "9990",
        "9998",
        "9999",
    ],
)
def test_the_documented_year_pattern_is_the_validators_rule(year):
    """The OpenAPI `pattern` of due_at and remind_at says what the validator
    does, so a generated client and the service agree."""
    value = f"{year}-06-01T12:00:00Z"
    documented = re.fullmatch(MOMENT_PATTERN, value) is not None
    try:
        TaskCreateSchema().load({"title": "t", "due_at": value})
        accepted = True
    except ValidationError:
        accepted = False
    assert documented == accepted == (year not in ("0001", "9999"))


# Pairs of tags that case mapping treats unevenly: str.lower() and
# PostgreSQL's lower() differ on the first ones (U+0130 and a final sigma);
# then compatibility characters (Kelvin and Ohm signs, Angstrom sign,
# ligatures), titlecase digraphs, characters whose lowercase is not one
# letter, Turkish dotless i, and other scripts.
UNEVEN_TAGS = [
    ("\u0130", "i"),
    ("i", "\u0130"),
    ("\u0130", "i\u0307"),
    ("\u0130STANBUL", "istanbul"),
    ("\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c3"),  # ΟΔΟΣ, οδοσ
    ("\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c2"),  # ΟΔΟΣ, οδος
    ("\u03bf\u03b4\u03bf\u03c2", "\u03bf\u03b4\u03bf\u03c3"),  # οδος, οδοσ
    ("\u03a3\u039f\u03a6\u039f\u03a3 \u03a3", "\u03c3\u03bf\u03c6\u03bf\u03c3 \u03c3"),
    ("\u03a3", "\u03c2"),
    ("\u00df", "\u1e9e"),  # ß, ẞ
    ("\u1e9e", "SS"),
    ("\u00df", "ss"),
    ("\u0131", "I"),  # dotless i
    ("\u0131", "i"),
    ("\u212a", "k"),  # Kelvin sign
    ("\u212a", "K"),
    ("\u2126", "\u03c9"),  # Ohm sign, omega
    ("\u2126", "\u03a9"),
    ("\u212b", "\u00e5"),  # Angstrom sign, å
    ("\ufb00", "ff"),  # ligature ff
    ("\ufb00", "FF"),
    ("\u01c5", "\u01c6"),  # titlecase Dž, dž
    ("\u01c5", "\u01c4"),  # Dž, DŽ
    ("\u01c5", "d\u017e"),
    ("\u1f88", "\u1f80"),  # Greek alpha with psili and prosgegrammeni
    ("\u03f4", "\u03b8"),  # capital theta symbol
    ("\u017f", "s"),  # long s
    ("\u00c9", "e\u0301"),  # composed and decomposed é: not a case
    ("\u00c9", "\u00e9"),
    ("\U00010400", "\U00010428"),  # Deseret
    ("\u13a0", "\uab70"),  # Cherokee
]


async def test_tags_the_database_holds_equal_are_merged_and_no_others(
    client, ann, migrated_database
):
    """Every pair is merged by the validator (the first spelling kept)
    exactly when the database's lower() makes them one tag, else stored as
    two: a 201, never a constraint's 422 or 409, never a 5xx."""
    with psycopg.connect(migrated_database) as conn:
        one_tag = {
            (a, b): conn.execute("SELECT lower(%s) = lower(%s)", (a, b)).fetchone()[0]
            for a, b in UNEVEN_TAGS
        }
    assert one_tag[("\u0130", "i")] is True  # the reported case
    for (a, b), same in one_tag.items():
        expected = [a] if same else [a, b]
        task = await create(client, ann.token, tags=[a, b])
        assert task["tags"] == expected, (a, b)
        changed = await patch(client, ann.token, task["id"], {"tags": [b, a]})
        assert changed["tags"] == ([b] if same else [b, a]), (a, b)
        resp = await client.get(TASKS, params={"tag": f"{a},{b}"}, headers=bearer(ann.token))
        assert resp.status == 200, await resp.text()
        assert task["id"] in {t["id"] for t in await resp.json()}, (a, b)
    resp = await client.get("/api/tags", headers=bearer(ann.token))
    assert resp.status == 200


async def test_the_validator_merges_exactly_what_the_database_lowers_alike(migrated_database):
    """For every character whose lowercase differs from it, in Python or in
    the database: the character and its lowercase, each way, are one tag
    for the validator exactly when the database's lower() says so."""
    with psycopg.connect(migrated_database) as conn:
        every = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
        lowered = conn.execute(
            "SELECT array_agg(lower(c) ORDER BY n) FROM unnest(%s::text[]) WITH ORDINALITY t(c, n)",
            (every,),
        ).fetchone()[0]
        pairs = [
            pair
            for c, low in zip(every, lowered, strict=True)
            for other in sorted({low, c.lower()} - {c})
            for pair in ((c, other), (other, c))
        ]
        same = conn.execute(
            "SELECT array_agg(lower(a) = lower(b) ORDER BY n)"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY t(a, b, n)",
            ([a for a, _ in pairs], [b for _, b in pairs]),
        ).fetchone()[0]
    assert len(pairs) > 1000
    schema = TaskCreateSchema()
    for (a, b), one in zip(pairs, same, strict=True):
        tags = schema.load({"title": "t", "tags": [a, b]})["tags"]
        assert tags == ([a] if one else [a, b]), (a, b)


# --- GET /api/tags and GET /api/tasks/summary ------------------------------------


async def test_tags_are_counted_case_insensitively_most_used_first(client, ann):
    await create(client, ann.token, tags=["Work", "home"])
    await create(client, ann.token, tags=["work"])
    await create(client, ann.token, tags=["WORK", "errands", "Home"])
    await create(client, ann.token)  # no tags
    bob = await user_token(client, email="bob@example.com")
    await create(client, bob.token, tags=["work", "bob only"])

    resp = await client.get("/api/tags", headers=bearer(ann.token))
    assert resp.status == 200
    # One tag per spelling-ignoring-case, named as on the oldest task.
    assert await resp.json() == [
        {"name": "Work", "count": 3},
        {"name": "home", "count": 2},
        {"name": "errands", "count": 1},
    ]
    bobs = await (await client.get("/api/tags", headers=bearer(bob.token))).json()
    assert bobs == [{"name": "bob only", "count": 1}, {"name": "work", "count": 1}]


async def test_no_tags_is_an_empty_list(client, ann):
    resp = await client.get("/api/tags", headers=bearer(ann.token))
    assert (resp.status, await resp.json()) == (200, [])


async def test_the_summary_counts_the_callers_tasks(client, ann):
    past, future = "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
    await create(client, ann.token, due_at=past)  # overdue
    await create(client, ann.token, due_at=past, completed=True)  # done: not overdue
    await create(client, ann.token, due_at=future)
    await create(client, ann.token)
    await create(client, ann.token, completed=True)
    bob = await user_token(client, email="bob@example.com")
    await create(client, bob.token, due_at=past)

    resp = await client.get("/api/tasks/summary", headers=bearer(ann.token))
    assert resp.status == 200
    assert await resp.json() == {"total": 5, "open": 3, "completed": 2, "overdue": 1}
    empty = await user_token(client, email="cy@example.com")
    resp = await client.get("/api/tasks/summary", headers=bearer(empty.token))
    assert await resp.json() == {"total": 0, "open": 0, "completed": 0, "overdue": 0}


@pytest.mark.parametrize("path", ["/api/tags", "/api/tasks/summary"])
async def test_tags_and_summary_need_a_token_and_a_live_account(client, migrated_database, path):
    await problem(await client.get(path), 401)
    gone = await user_token(client, email="gone@example.com")
    with psycopg.connect(migrated_database) as conn:
        conn.execute("DELETE FROM users WHERE email = 'gone@example.com'")
    await problem(await client.get(path, headers=bearer(gone.token)), 401)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
async def test_summary_is_not_a_task_id(client, ann, method):
    resp = await client.request(method, "/api/tasks/summary", headers=bearer(ann.token))
    await problem(resp, 405)
    assert set(resp.headers["Allow"].split(",")) == {"GET"}
