from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import psycopg
import pytest

from tests.helpers import TASKS, bearer, make_task, problem, user_token


@pytest.fixture
async def ann(client):
    return await user_token(client)


def ts(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


# --- create ------------------------------------------------------------------


async def test_create_answers_201_with_location_and_etag(client, ann):
    user_id, token = ann
    resp = await client.post(
        TASKS, json={"title": "Buy milk", "description": "2 litres"}, headers=bearer(token)
    )
    assert resp.status == 201
    task = await resp.json()
    assert set(task) == {
        "id",
        "user_id",
        "title",
        "description",
        "completed",
        "completed_at",
        "priority",
        "due_at",
        "remind_at",
        "tags",
        "repeat",
        "created_at",
        "updated_at",
    }
    assert task["user_id"] == user_id
    # The defaults: absent values are null, tags [].
    assert task["priority"] == "none"
    assert task["due_at"] is task["remind_at"] is task["completed_at"] is None
    assert task["tags"] == []
    assert task["repeat"] is None
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 litres"
    assert task["completed"] is False
    assert task["created_at"] == task["updated_at"]
    ts(task["created_at"])
    # Absolute, from the Host header (API.md: PUBLIC_URL when set).
    assert resp.headers["Location"] == str(client.make_url(f"/api/tasks/{task['id']}"))
    etag = resp.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    fetched = await client.session.get(resp.headers["Location"], headers=bearer(token))
    assert await fetched.json() == task
    assert fetched.headers["ETag"] == etag


async def test_create_defaults_description_to_null(client, ann):
    task, _ = await make_task(client, ann.token, title="t")
    assert task["description"] is None
    assert task["completed"] is False


async def test_create_accepts_the_limits(client, ann):
    task, _ = await make_task(
        client, ann.token, title="t" * 200, description="d" * 2000, completed=True
    )
    assert len(task["title"]) == 200
    assert task["completed"] is True
    task, _ = await make_task(client, ann.token, title="🌱 ünïcödé", description=None)
    assert task["title"] == "🌱 ünïcödé"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   \n\t"}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": None}, "title"),
        ({"title": 5}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": {"a": 1}}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"title": "line one\nline two"}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"title": "\u200b\u200d"}, "title"),  # zero-width only
        ({"title": "\u3164"}, "title"),  # Hangul filler
        ({"title": "\u202e\u200f"}, "title"),  # bidi controls only
        ({"title": "ok", "description": "d" * 2001}, "description"),
        ({"title": "ok", "description": 7}, "description"),
        ({"title": "ok", "description": "x\x00"}, "description"),
        ({"title": "ok", "completed": "yes"}, "completed"),
        ({"title": "ok", "completed": "true"}, "completed"),
        ({"title": "ok", "completed": 1}, "completed"),
        ({"title": "ok", "completed": 0}, "completed"),
        ({"title": "ok", "completed": None}, "completed"),
        ({"title": "ok", "priority": 1}, "priority"),
        ({"title": "ok", "version": 1}, "version"),
    ],
)
async def test_create_refuses_invalid_input_with_422(client, ann, payload, field):
    resp = await client.post(TASKS, json=payload, headers=bearer(ann.token))
    body = await problem(resp, 422)
    assert field in body["errors"], body


async def test_create_ignores_read_only_fields(client, ann):
    user_id, token = ann
    sent = {
        "title": "t",
        "id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
    }
    task, _ = await make_task(client, token, **sent)
    assert task["id"] != sent["id"]
    assert task["user_id"] == user_id
    assert not task["created_at"].startswith("2000")


async def test_create_body_rules(client, ann):
    headers = bearer(ann.token)
    await problem(await client.post(TASKS, headers=headers), 400)
    await problem(
        await client.post(TASKS, data="{", headers={**headers, "Content-Type": "application/json"}),
        400,
    )
    await problem(
        await client.post(TASKS, data="title=x", headers={**headers, "Content-Type": "text/plain"}),
        415,
    )
    big = '{"title": "' + "x" * 70000 + '"}'
    await problem(
        await client.post(TASKS, data=big, headers={**headers, "Content-Type": "application/json"}),
        413,
    )
    resp = await client.post(
        TASKS, data="[1]", headers={**headers, "Content-Type": "application/json"}
    )
    await problem(resp, 422)


async def test_a_token_for_a_deleted_account_creates_nothing(client, ann, migrated_database):
    import psycopg

    user_id, token = ann
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    resp = await client.post(TASKS, json={"title": "t"}, headers=bearer(token))
    await problem(resp, 401)
    with psycopg.connect(migrated_database) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0


# --- read --------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "00000000-0000-0000-0000-00000000000g"])
async def test_a_path_id_that_is_not_a_uuid_is_404(client, ann, bad_id):
    headers = bearer(ann.token)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        resp = await client.request(
            method, f"{TASKS}/{bad_id}", json={"title": "x"}, headers=headers
        )
        await problem(resp, 404)
    resp = await client.patch(f"{TASKS}/{bad_id}/complete", headers=headers)
    await problem(resp, 404)


async def test_a_missing_task_is_404(client, ann):
    resp = await client.get(f"{TASKS}/{uuid.uuid4()}", headers=bearer(ann.token))
    await problem(resp, 404)


async def test_if_none_match_gives_304(client, ann):
    task, etag = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}", bearer(ann.token)
    for header in (etag, f"W/{etag}", f'"999", {etag}', "*"):
        resp = await client.get(url, headers={**headers, "If-None-Match": header})
        assert resp.status == 304, header
        assert resp.headers["ETag"] == etag
        assert await resp.read() == b""
    resp = await client.get(url, headers={**headers, "If-None-Match": '"999"'})
    assert resp.status == 200


async def test_task_reads_are_private_to_caches(client, ann):
    task, _ = await make_task(client, ann.token)
    resp = await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))
    assert "private" in resp.headers["Cache-Control"]
    assert "Authorization" in resp.headers["Vary"]


# --- PUT and PATCH -------------------------------------------------------------


def stamp_ahead_of_the_clock(database_url: str, task_id: str) -> datetime:
    """Set a task's updated_at an hour ahead of the database's clock, as a
    clock stepped back leaves it; return that stamp."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers, this session only
        return conn.execute(
            "UPDATE tasks SET updated_at = clock_timestamp() + interval '1 hour' "
            "WHERE id = %s RETURNING updated_at",
            (task_id,),
        ).fetchone()[0]


async def test_put_replaces_given_fields_and_keeps_omitted_ones(client, ann, migrated_database):
    task, etag = await make_task(
        client, ann.token, title="a", description="keep me", completed=True
    )
    # Elapsed time cannot carry updated_at past this; only the "strictly later" rule can.
    ahead = stamp_ahead_of_the_clock(migrated_database, task["id"])
    resp = await client.put(f"{TASKS}/{task['id']}", json={"title": "b"}, headers=bearer(ann.token))
    assert resp.status == 200
    updated = await resp.json()
    assert updated["title"] == "b"
    assert updated["description"] == "keep me"
    assert updated["completed"] is True
    assert updated["created_at"] == task["created_at"]
    assert ts(updated["updated_at"]) > ts(task["updated_at"])
    assert ts(updated["updated_at"]) > ahead
    assert resp.headers["ETag"] != etag


async def test_put_requires_the_title(client, ann):
    task, _ = await make_task(client, ann.token)
    resp = await client.put(
        f"{TASKS}/{task['id']}", json={"completed": True}, headers=bearer(ann.token)
    )
    body = await problem(resp, 422)
    assert "title" in body["errors"]


async def test_put_accepts_a_task_object_sent_back(client, ann):
    task, _ = await make_task(client, ann.token, title="a")
    sent = {**task, "title": "edited"}
    resp = await client.put(f"{TASKS}/{task['id']}", json=sent, headers=bearer(ann.token))
    assert resp.status == 200
    assert (await resp.json())["title"] == "edited"


async def test_put_can_clear_the_description(client, ann):
    task, _ = await make_task(client, ann.token, description="x")
    resp = await client.put(
        f"{TASKS}/{task['id']}", json={"title": "a", "description": None}, headers=bearer(ann.token)
    )
    assert (await resp.json())["description"] is None


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"title": "new"}, {"title": "new", "description": "d", "completed": False}),
        ({"description": None}, {"title": "a", "description": None, "completed": False}),
        ({"description": "e"}, {"title": "a", "description": "e", "completed": False}),
        ({"completed": True}, {"title": "a", "description": "d", "completed": True}),
        (
            {"title": "x", "description": "y", "completed": True},
            {"title": "x", "description": "y", "completed": True},
        ),
    ],
)
async def test_patch_changes_only_what_it_sends(client, ann, patch, expected):
    task, _ = await make_task(client, ann.token, title="a", description="d")
    resp = await client.patch(f"{TASKS}/{task['id']}", json=patch, headers=bearer(ann.token))
    assert resp.status == 200
    body = await resp.json()
    assert {k: body[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "_schema"),
        ({"id": str(uuid.uuid4())}, "_schema"),  # only read-only fields: nothing to change
        ({"title": ""}, "title"),
        ({"title": " "}, "title"),
        ({"title": None}, "title"),
        ({"completed": "false"}, "completed"),
        ({"description": "d" * 2001}, "description"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_patch_refuses_invalid_input(client, ann, payload, field):
    task, _ = await make_task(client, ann.token)
    resp = await client.patch(f"{TASKS}/{task['id']}", json=payload, headers=bearer(ann.token))
    body = await problem(resp, 422)
    assert field in body["errors"], body


async def test_every_change_moves_updated_at_and_the_etag(client, ann):
    task, etag = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}", bearer(ann.token)
    seen_etags, last = {etag}, ts(task["updated_at"])
    for method, path, payload in [
        ("PATCH", url, {"title": "b"}),
        ("PUT", url, {"title": "b"}),  # same value: still a write, still a new version
        ("PATCH", url + "/complete", None),
        ("PATCH", url + "/complete", {"completed": True}),
    ]:
        resp = await client.request(method, path, json=payload, headers=headers)
        assert resp.status == 200
        body = await resp.json()
        assert body["created_at"] == task["created_at"]
        assert ts(body["updated_at"]) > last
        last = ts(body["updated_at"])
        assert resp.headers["ETag"] not in seen_etags
        seen_etags.add(resp.headers["ETag"])


# --- /complete -----------------------------------------------------------------


async def test_complete_without_a_body_toggles(client, ann):
    task, _ = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}/complete", bearer(ann.token)
    first = await (await client.patch(url, headers=headers)).json()
    second = await (await client.patch(url, headers=headers)).json()
    assert (first["completed"], second["completed"]) == (True, False)


async def test_complete_with_a_body_sets(client, ann):
    task, _ = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}/complete", bearer(ann.token)
    for _ in range(2):
        resp = await client.patch(url, json={"completed": True}, headers=headers)
        assert (await resp.json())["completed"] is True
    resp = await client.patch(url, json={"completed": False}, headers=headers)
    assert (await resp.json())["completed"] is False


@pytest.mark.parametrize("payload", [{}, {"completed": "yes"}, {"completed": 1}, {"done": True}])
async def test_complete_refuses_a_bad_body(client, ann, payload):
    task, _ = await make_task(client, ann.token)
    resp = await client.patch(
        f"{TASKS}/{task['id']}/complete", json=payload, headers=bearer(ann.token)
    )
    await problem(resp, 422)


# --- delete ---------------------------------------------------------------------


async def test_delete_answers_204_with_no_body(client, ann):
    task, _ = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}", bearer(ann.token)
    resp = await client.delete(url, headers=headers)
    assert resp.status == 204
    assert await resp.read() == b""
    await problem(await client.get(url, headers=headers), 404)
    await problem(await client.delete(url, headers=headers), 404)


# --- If-Match -------------------------------------------------------------------


def _writes(task_id: str):
    url = f"{TASKS}/{task_id}"
    return [
        ("PUT", url, {"title": "x"}),
        ("PATCH", url, {"title": "x"}),
        ("PATCH", url + "/complete", None),
        ("DELETE", url, None),
    ]


@pytest.mark.parametrize("index", range(4), ids=["PUT", "PATCH", "complete", "DELETE"])
async def test_if_match_mismatch_is_412_and_changes_nothing(client, ann, index):
    task, etag = await make_task(client, ann.token, title="orig")
    method, url, payload = _writes(task["id"])[index]
    for stale in ('"999"', f"W/{etag}", "garbage", '""'):
        resp = await client.request(
            method, url, json=payload, headers={**bearer(ann.token), "If-Match": stale}
        )
        await problem(resp, 412)
    resp = await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))
    assert await resp.json() == task
    assert resp.headers["ETag"] == etag


@pytest.mark.parametrize("index", range(4), ids=["PUT", "PATCH", "complete", "DELETE"])
async def test_if_match_that_matches_lets_the_write_through(client, ann, index):
    task, etag = await make_task(client, ann.token)
    method, url, payload = _writes(task["id"])[index]
    for header in (etag, f'"999", {etag}'):
        task, etag = await make_task(client, ann.token)
        method, url, payload = _writes(task["id"])[index]
        resp = await client.request(
            method, url, json=payload, headers={**bearer(ann.token), "If-Match": header}
        )
        assert resp.status in (200, 204), await resp.text()


async def test_if_match_star_and_a_stale_etag_after_a_change(client, ann):
    task, etag = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}", bearer(ann.token)
    resp = await client.patch(url, json={"title": "b"}, headers={**headers, "If-Match": "*"})
    assert resp.status == 200
    # The ETag read before that change is stale now.
    resp = await client.patch(url, json={"title": "c"}, headers={**headers, "If-Match": etag})
    await problem(resp, 412)


async def test_if_match_on_a_missing_task_is_404(client, ann):
    resp = await client.patch(
        f"{TASKS}/{uuid.uuid4()}",
        json={"title": "x"},
        headers={**bearer(ann.token), "If-Match": '"1"'},
    )
    await problem(resp, 404)


async def at_once(client, token: str, *requests: tuple[str, dict | None]) -> tuple[str, list]:
    """A new task, then (method, body) requests sent to it together, each with
    its ETag in If-Match; the task's URL and the responses."""
    task, etag = await make_task(client, token)
    url = f"{TASKS}/{task['id']}"
    conditional = {**bearer(token), "If-Match": etag}
    responses = await asyncio.gather(
        *(client.request(method, url, json=body, headers=conditional) for method, body in requests)
    )
    return url, responses


async def test_concurrent_writers_with_the_same_if_match_exactly_one_wins(client, ann):
    for round_ in range(15):
        url, responses = await at_once(
            client,
            ann.token,
            ("PATCH", {"title": f"writer A {round_}"}),
            ("PATCH", {"title": f"writer B {round_}"}),
        )
        statuses = sorted(r.status for r in responses)
        assert statuses == [200, 412], statuses
        winner = next(r for r in responses if r.status == 200)
        final = await (await client.get(url, headers=bearer(ann.token))).json()
        assert final["title"] == (await winner.json())["title"]


async def test_concurrent_delete_and_update_with_the_same_if_match(client, ann):
    for _ in range(10):
        _, (update, delete) = await at_once(
            client, ann.token, ("PATCH", {"title": "x"}), ("DELETE", None)
        )
        # One of them wins; the loser is told (412 if the task survived, 404 if not).
        assert sorted([update.status, delete.status]) in ([200, 412], [204, 404], [204, 412])


async def test_complete_with_a_json_null_body_is_422_not_a_toggle(client, ann):
    task, _ = await make_task(client, ann.token)
    resp = await client.patch(
        f"{TASKS}/{task['id']}/complete",
        data="null",
        headers={**bearer(ann.token), "Content-Type": "application/json"},
    )
    await problem(resp, 422)
    fetched = await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))
    assert (await fetched.json())["completed"] is False
