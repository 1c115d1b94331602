"""GET /api/tasks/events in one process: what a stream sends, resuming
with Last-Event-ID, the per-account and per-process limits, the heartbeat
and shutdown."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from service.app import create_app
from tests.conftest import TEST_SECRET, make_settings
from tests.helpers import PASSWORD, TASKS, bearer, problem, user_token
from tests.test_metrics import metric_samples

EVENTS = "/api/tasks/events"
CHANGES = "/api/tasks/changes"
WAIT = 15  # seconds an expected event may take: never reached when it works


@pytest.fixture
async def ann(client):
    return await user_token(client)


async def next_event(resp) -> dict:
    """The next event (comments skipped): its fields, data joined."""
    event: dict = {}
    async with asyncio.timeout(WAIT):
        while True:
            line = (await resp.content.readline()).decode()
            if line == "":
                raise EOFError("the stream ended")
            line = line.rstrip("\r\n")
            if not line:
                if event:
                    return event
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            event[name] = event[name] + "\n" + value if name in event else value


async def open_stream(client, token: str, **headers: str):
    resp = await client.get(EVENTS, headers={**bearer(token), **headers})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return resp


async def test_a_change_made_elsewhere_arrives_as_an_event(client, ann):
    stream = await open_stream(client, ann.token)
    made = await client.post(TASKS, json={"title": "hello"}, headers=bearer(ann.token))
    task = await made.json()
    event = await next_event(stream)
    assert event["event"] == "task"
    one = await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))
    assert event["data"] == await one.text()
    # Its id is a sync token: the feed takes over from it.
    feed = await client.get(CHANGES, params={"since": event["id"]}, headers=bearer(ann.token))
    assert feed.status == 200

    assert (await client.delete(f"{TASKS}/{task['id']}", headers=bearer(ann.token))).status == 204
    gone = await next_event(stream)
    assert gone["event"] == "deleted"
    assert task["id"] in gone["data"]
    stream.close()


async def test_another_accounts_changes_never_arrive(client, ann):
    bob = await user_token(client, "bob@example.com")
    stream = await open_stream(client, ann.token)
    await client.post(TASKS, json={"title": "bob's"}, headers=bearer(bob.token))
    await client.post(TASKS, json={"title": "ann's"}, headers=bearer(ann.token))
    event = await next_event(stream)
    assert '"ann\'s"' in event["data"]
    stream.close()


async def test_last_event_id_resumes_with_nothing_missed(client, ann):
    stream = await open_stream(client, ann.token)
    await client.post(TASKS, json={"title": "one"}, headers=bearer(ann.token))
    first = await next_event(stream)
    stream.close()
    # Made while no stream is open.
    await client.post(TASKS, json={"title": "two"}, headers=bearer(ann.token))
    await client.post(TASKS, json={"title": "three"}, headers=bearer(ann.token))
    again = await open_stream(client, ann.token, **{"Last-Event-ID": first["id"]})
    titles = []
    while "three" not in titles:
        event = await next_event(again)
        titles.append(event["data"].split('"title":"')[1].split('"')[0])
    assert "two" in titles
    again.close()


async def test_a_forged_last_event_id_is_a_400(client, ann):
    resp = await client.get(EVENTS, headers={**bearer(ann.token), "Last-Event-ID": "forged"})
    assert (await problem(resp, 400))["type"].endswith("/sync-token-invalid")


async def test_one_stream_too_many_closes_the_accounts_oldest(aiohttp_client, migrated_database):
    settings = make_settings(
        DATABASE_URL=migrated_database, EVENTS_PER_USER="2", EVENTS_PER_PROCESS="3"
    )
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)
    bob = await user_token(client, "bob@example.com")
    oldest = await open_stream(client, ann.token)
    second = await open_stream(client, ann.token)
    third = await open_stream(client, ann.token)
    # It is told why, so that a browser tab closes it instead of reconnecting.
    assert "EVENTS_PER_USER" in (await _ends(oldest))["data"]
    # Three open in the process: a fourth is a 503 with Retry-After.
    await open_stream(client, bob.token)
    full = await client.get(EVENTS, headers=bearer(bob.token))
    body = await problem(full, 503)
    assert full.headers["Retry-After"]
    assert body["type"].endswith("/busy")
    for resp in (second, third):
        resp.close()


async def test_an_idle_stream_gets_a_comment_every_heartbeat(aiohttp_client, migrated_database):
    settings = make_settings(DATABASE_URL=migrated_database, EVENTS_HEARTBEAT="100ms")
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)
    stream = await open_stream(client, ann.token)
    async with asyncio.timeout(WAIT):
        comments = 0
        while comments < 3:
            if (await stream.content.readline()).startswith(b":"):
                comments += 1
    stream.close()


async def _ends(stream) -> dict:
    """The stream's last event: it must end after it."""
    event = await next_event(stream)
    assert event["event"] == "end"
    async with asyncio.timeout(WAIT):
        assert await stream.content.read() == b""
    return event


async def test_signing_out_ends_the_stream(client, ann):
    stream = await open_stream(client, ann.token)
    other = await user_token(client, "bob@example.com")
    bobs = await open_stream(client, other.token)
    assert (await client.post("/api/auth/signout", headers=bearer(ann.token))).status == 204
    event = await _ends(stream)
    assert "signed out" in event["data"]
    # Another account's stream goes on.
    await client.post(TASKS, json={"title": "still here"}, headers=bearer(other.token))
    assert (await next_event(bobs))["event"] == "task"
    bobs.close()


async def test_a_password_change_or_the_accounts_deletion_ends_its_streams(client, ann):
    stream = await open_stream(client, ann.token)
    body = {"current_password": PASSWORD, "new_password": "another correct horse"}
    changed = await client.put("/api/auth/password", json=body, headers=bearer(ann.token))
    assert changed.status == 200
    await _ends(stream)
    fresh = (await changed.json())["access_token"]
    second = await open_stream(client, fresh)
    gone = await client.delete(
        "/api/auth/me", json={"password": "another correct horse"}, headers=bearer(fresh)
    )
    assert gone.status == 204
    await _ends(second)


async def test_a_stream_ends_when_its_token_expires(client, ann):
    # The same session's token, reissued to expire in a second (the tests
    # know the signing secret); the stream ends once it is refused, past
    # the leeway every token gets.
    claims = jwt.decode(ann.token, options={"verify_signature": False})
    claims["exp"] = int(time.time()) + 1
    short = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
    stream = await open_stream(client, short)
    event = await _ends(stream)
    assert event["data"]


async def test_open_streams_and_events_sent_are_counted(client, ann):
    def sample(text: str, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return metric_samples(text).get(key, 0.0)

    before = await (await client.get("/metrics")).text()
    stream = await open_stream(client, ann.token)
    await client.post(TASKS, json={"title": "counted"}, headers=bearer(ann.token))
    await next_event(stream)
    during = await (await client.get("/metrics")).text()
    assert sample(during, "todo_event_streams") == sample(before, "todo_event_streams") + 1
    sent = sample(during, "todo_events_sent_total", event="task")
    assert sent == sample(before, "todo_events_sent_total", event="task") + 1
    stream.close()
