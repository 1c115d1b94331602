"""Repeating tasks (API.md "Tasks", `repeat`): the RRULE subset, and what
completing one does, through PATCH, PUT and /complete, against the real
database."""

from __future__ import annotations

import asyncio
import datetime as calendar
from datetime import UTC, datetime

import dateutil.rrule
import pytest
from marshmallow import ValidationError

from service.tasks import repeat
from tests.helpers import TASKS, bearer, problem, user_token

MONDAY = "2027-03-01T09:00:00Z"


@pytest.fixture
async def ann(client):
    return await user_token(client)


async def create(client, token: str, **fields) -> dict:
    resp = await client.post(TASKS, json={"title": "t", **fields}, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def complete(client, token: str, task_id: str, how: str = "patch") -> dict:
    url = f"{TASKS}/{task_id}"
    if how == "patch":
        resp = await client.patch(url, json={"completed": True}, headers=bearer(token))
    elif how == "put":
        resp = await client.put(url, json={"title": "t", "completed": True}, headers=bearer(token))
    elif how == "toggle":
        resp = await client.patch(url + "/complete", headers=bearer(token))
    else:
        resp = await client.patch(
            url + "/complete", json={"completed": True}, headers=bearer(token)
        )
    assert resp.status == 200, await resp.text()
    return await resp.json()


@pytest.mark.parametrize("how", ["patch", "put", "toggle", "set"])
async def test_completing_a_weekly_task_moves_it_to_the_next_day(client, ann, how):
    task = await create(
        client,
        ann.token,
        due_at=MONDAY,
        remind_at="2027-03-01T08:30:00Z",
        repeat="FREQ=WEEKLY;BYDAY=MO,WE",
    )
    moved = await complete(client, ann.token, task["id"], how)
    assert moved["completed"] is False
    assert moved["completed_at"] is None
    assert moved["due_at"] == "2027-03-03T09:00:00Z"  # Wednesday
    assert moved["remind_at"] == "2027-03-03T08:30:00Z"  # moved as much
    assert moved["repeat"] == "FREQ=WEEKLY;BYDAY=MO,WE"
    again = await complete(client, ann.token, task["id"], how)
    assert again["due_at"] == "2027-03-08T09:00:00Z"  # the next Monday


async def test_monthly_on_the_last_day_follows_month_ends_and_leap_years(client, ann):
    task = await create(
        client, ann.token, due_at="2028-01-31T18:00:00Z", repeat="FREQ=MONTHLY;BYMONTHDAY=-1"
    )
    seen = []
    for _ in range(3):
        task = await complete(client, ann.token, task["id"])
        seen.append(task["due_at"])
    assert seen == ["2028-02-29T18:00:00Z", "2028-03-31T18:00:00Z", "2028-04-30T18:00:00Z"]


async def test_a_yearly_leap_day_comes_back_on_the_next_leap_day(client, ann):
    task = await create(client, ann.token, due_at="2028-02-29T10:00:00Z", repeat="FREQ=YEARLY")
    assert (await complete(client, ann.token, task["id"]))["due_at"] == "2032-02-29T10:00:00Z"


async def test_a_count_ends_the_series_and_the_last_completion_closes_it(client, ann):
    task = await create(client, ann.token, due_at=MONDAY, repeat="FREQ=DAILY;COUNT=2")
    moved = await complete(client, ann.token, task["id"])
    assert (moved["due_at"], moved["repeat"]) == ("2027-03-02T09:00:00Z", "FREQ=DAILY;COUNT=1")
    done = await complete(client, ann.token, task["id"])
    assert done["completed"] is True
    assert done["completed_at"] is not None
    assert done["due_at"] == "2027-03-02T09:00:00Z"  # not moved: no occurrence left


async def test_until_ends_the_series(client, ann):
    task = await create(
        client, ann.token, due_at=MONDAY, repeat="FREQ=WEEKLY;UNTIL=20270308T090000Z"
    )
    assert (await complete(client, ann.token, task["id"]))["due_at"] == "2027-03-08T09:00:00Z"
    assert (await complete(client, ann.token, task["id"]))["completed"] is True


async def test_reopening_and_other_edits_do_not_move_a_repeating_task(client, ann):
    task = await create(client, ann.token, due_at=MONDAY, repeat="FREQ=DAILY")
    url = f"{TASKS}/{task['id']}"
    resp = await client.patch(url, json={"title": "renamed"}, headers=bearer(ann.token))
    assert (await resp.json())["due_at"] == MONDAY
    resp = await client.patch(url, json={"completed": False}, headers=bearer(ann.token))
    assert (await resp.json())["due_at"] == MONDAY


async def test_the_rule_is_stored_in_one_spelling(client, ann):
    task = await create(
        client, ann.token, due_at=MONDAY, repeat="rrule:freq=weekly;byday=mo;until=20271231"
    )
    assert task["repeat"] == "FREQ=WEEKLY;BYDAY=MO;UNTIL=20271231T235959Z"


async def test_created_completed_a_repeating_task_is_due_next_time(client, ann):
    task = await create(client, ann.token, due_at=MONDAY, repeat="FREQ=DAILY", completed=True)
    assert (task["completed"], task["due_at"]) == (False, "2027-03-02T09:00:00Z")


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=HOURLY",
        "FREQ=MINUTELY",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=DAILY;BYSETPOS=1",
        "INTERVAL=2",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=2;UNTIL=20271231",
        "FREQ=DAILY;FREQ=WEEKLY",
        "FREQ=WEEKLY;BYDAY=1MO",
        "FREQ=MONTHLY;BYDAY=6MO",
        "FREQ=WEEKLY;BYDAY=MONDAY",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=MONTHLY;BYMONTHDAY=0",
        "FREQ=DAILY;UNTIL=20270230",
        "FREQ=DAILY;UNTIL=yesterday",
        "FREQ=DAILY;UNTIL=20200101",  # before the due_at: never occurs
        "FREQ=YEARLY;BYMONTHDAY=31;UNTIL=20270310T000000Z",  # no 31st before it
        # Rules with no date at all: dateutil alone would search until year
        # 9999 (most of a second each); repeat.py stops at its horizon.
        "FREQ=DAILY;INTERVAL=7;BYDAY=SU",  # every 7th day from a Monday
        "FREQ=MONTHLY;BYMONTHDAY=31;BYDAY=1MO",
        "FREQ=YEARLY;BYDAY=2TH;BYMONTHDAY=15",
        "FREQ=DAILY;",
        "",
        "FREQ=DAILY;" + "INTERVAL=1;" * 20,
    ],
)
async def test_a_rule_outside_the_subset_or_that_never_occurs_is_a_422(client, ann, rule):
    resp = await client.post(
        TASKS, json={"title": "t", "due_at": MONDAY, "repeat": rule}, headers=bearer(ann.token)
    )
    assert list((await problem(resp, 422))["errors"]) == ["repeat"]


async def test_a_rule_needs_a_due_at(client, ann):
    resp = await client.post(
        TASKS, json={"title": "t", "repeat": "FREQ=DAILY"}, headers=bearer(ann.token)
    )
    assert list((await problem(resp, 422))["errors"]) == ["repeat"]
    plain = await create(client, ann.token)
    resp = await client.patch(
        f"{TASKS}/{plain['id']}", json={"repeat": "FREQ=DAILY"}, headers=bearer(ann.token)
    )
    assert list((await problem(resp, 422))["errors"]) == ["repeat"]
    repeating = await create(client, ann.token, due_at=MONDAY, repeat="FREQ=DAILY")
    resp = await client.patch(
        f"{TASKS}/{repeating['id']}", json={"due_at": None}, headers=bearer(ann.token)
    )
    assert list((await problem(resp, 422))["errors"]) == ["due_at"]
    # Both at once is fine: the task stops repeating.
    resp = await client.patch(
        f"{TASKS}/{repeating['id']}",
        json={"due_at": None, "repeat": None},
        headers=bearer(ann.token),
    )
    assert (await resp.json())["repeat"] is None


async def test_completing_a_repeating_task_honours_if_match(client, ann):
    resp = await client.post(
        TASKS,
        json={"title": "t", "due_at": MONDAY, "repeat": "FREQ=DAILY"},
        headers=bearer(ann.token),
    )
    task, tag = await resp.json(), resp.headers["ETag"]
    url = f"{TASKS}/{task['id']}"
    stale = await client.patch(
        url, json={"completed": True}, headers={**bearer(ann.token), "If-Match": '"999"'}
    )
    await problem(stale, 412)
    resp = await client.patch(
        url, json={"completed": True}, headers={**bearer(ann.token), "If-Match": tag}
    )
    assert resp.status == 200
    assert resp.headers["ETag"] != tag
    assert (await resp.json())["due_at"] == "2027-03-02T09:00:00Z"


async def test_another_users_repeating_task_is_a_404(client, ann):
    task = await create(client, ann.token, due_at=MONDAY, repeat="FREQ=DAILY")
    bob = await user_token(client, email="bob@example.com")
    for how in ("patch", "toggle"):
        url = f"{TASKS}/{task['id']}" + ("/complete" if how == "toggle" else "")
        body = {"completed": True} if how == "patch" else None
        resp = await client.patch(url, json=body, headers=bearer(bob.token))
        await problem(resp, 404)
    mine = await (await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))).json()
    assert mine["due_at"] == MONDAY


def test_a_search_leaves_dateutil_as_it_found_it():
    """The horizon is set on dateutil's module for one search only."""
    with pytest.raises(ValidationError):
        repeat.check_occurs("FREQ=DAILY;INTERVAL=7;BYDAY=SU", datetime(2027, 3, 1, tzinfo=UTC))
    assert dateutil.rrule.datetime is calendar
    assert dateutil.rrule.datetime.MAXYEAR == 9999


@pytest.mark.parametrize("how", ["set", "toggle", "patch"])
async def test_a_completion_racing_edits_of_the_rule_never_answers_412(client, ann, how):
    # No If-Match, so never a 412: when another write drops or restores the
    # rule between the completion's statements, the completion runs again on
    # what it finds (a 409 only after three such losses, as documented).
    resp = await client.post(
        TASKS,
        json={"title": "r", "due_at": MONDAY, "repeat": "FREQ=DAILY"},
        headers=bearer(ann.token),
    )
    url = f"{TASKS}/{(await resp.json())['id']}"
    complete = {
        "set": ("PATCH", f"{url}/complete", {"completed": True}),
        "toggle": ("PATCH", f"{url}/complete", None),
        "patch": ("PATCH", url, {"completed": True}),
    }[how]
    answers: list[int] = []

    async def completer():
        for _ in range(150):
            method, path, body = complete
            answers.append(
                (await client.request(method, path, json=body, headers=bearer(ann.token))).status
            )

    async def flipper():
        for n in range(150):
            body = (
                {"repeat": None}
                if n % 2
                else {"repeat": "FREQ=DAILY", "due_at": MONDAY, "completed": False}
            )
            assert (await client.patch(url, json=body, headers=bearer(ann.token))).status == 200

    await asyncio.gather(completer(), flipper())
    assert set(answers) <= {200, 409}, sorted(set(answers))
    assert answers.count(200) > len(answers) // 2
