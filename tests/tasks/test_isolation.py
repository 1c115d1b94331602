"""Nobody sees or touches another person's tasks: a two-user matrix over
every method, on both route families."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import bearer, make_task, problem, user_token


@pytest.fixture
async def two_users(client):
    ann = await user_token(client, "ann@example.com")
    bob = await user_token(client, "bob@example.com")
    return ann, bob


def prefixes(user_id: str) -> list[str]:
    return ["/api/tasks", f"/api/{user_id}/tasks"]


def item_requests(prefix: str, task_id: str):
    url = f"{prefix}/{task_id}"
    return [
        ("GET", url, None),
        ("PUT", url, {"title": "hijacked"}),
        ("PATCH", url, {"title": "hijacked"}),
        ("PATCH", url + "/complete", None),
        ("PATCH", url + "/complete", {"completed": True}),
        ("DELETE", url, None),
    ]


async def test_another_users_task_is_404_like_a_missing_one_for_every_method(client, two_users):
    (_ann_id, ann_token), (bob_id, bob_token) = two_users
    task, etag = await make_task(client, ann_token, title="ann's secret")
    missing = str(uuid.uuid4())
    for prefix in prefixes(bob_id):
        for (method, url, payload), (_, missing_url, _) in zip(
            item_requests(prefix, task["id"]), item_requests(prefix, missing), strict=True
        ):
            for extra in ({}, {"If-Match": etag}, {"If-None-Match": etag}):
                headers = {**bearer(bob_token), **extra}
                theirs = await client.request(method, url, json=payload, headers=headers)
                nothing = await client.request(method, missing_url, json=payload, headers=headers)
                body_theirs = await problem(theirs, 404)
                body_nothing = await problem(nothing, 404)
                # The same body, but for the path it was asked about.
                body_theirs.pop("instance")
                body_nothing.pop("instance")
                assert body_theirs == body_nothing
    # Ann's task is untouched.
    resp = await client.get(f"/api/tasks/{task['id']}", headers=bearer(ann_token))
    assert await resp.json() == task
    assert resp.headers["ETag"] == etag


async def test_listings_show_only_the_callers_tasks(client, two_users):
    (_ann_id, ann_token), (bob_id, bob_token) = two_users
    for i in range(3):
        await make_task(client, ann_token, title=f"ann {i}")
    await make_task(client, bob_token, title="bob 0")
    for prefix in prefixes(bob_id):
        resp = await client.get(prefix, headers=bearer(bob_token))
        titles = [t["title"] for t in await resp.json()]
        assert titles == ["bob 0"]
    resp = await client.get("/api/tasks?q=ann", headers=bearer(bob_token))
    assert await resp.json() == []


async def test_the_alias_routes_behave_like_the_plain_ones(client, two_users):
    (ann_id, ann_token), _ = two_users
    base = f"/api/{ann_id}/tasks"
    headers = bearer(ann_token)
    resp = await client.post(base, json={"title": "via alias"}, headers=headers)
    assert resp.status == 201
    task = await resp.json()
    assert resp.headers["Location"] == str(client.make_url(f"/api/tasks/{task['id']}"))
    etag = resp.headers["ETag"]
    resp = await client.get(f"{base}/{task['id']}", headers=headers)
    assert await resp.json() == task
    resp = await client.get(f"{base}/{task['id']}", headers={**headers, "If-None-Match": etag})
    assert resp.status == 304
    resp = await client.put(f"{base}/{task['id']}", json={"title": "put"}, headers=headers)
    assert (await resp.json())["title"] == "put"
    resp = await client.patch(f"{base}/{task['id']}", json={"description": "d"}, headers=headers)
    assert (await resp.json())["description"] == "d"
    resp = await client.patch(f"{base}/{task['id']}/complete", headers=headers)
    assert (await resp.json())["completed"] is True
    resp = await client.patch(
        f"{base}/{task['id']}", json={"title": "x"}, headers={**headers, "If-Match": etag}
    )
    await problem(resp, 412)
    resp = await client.get(base, headers=headers)
    assert [t["id"] for t in await resp.json()] == [task["id"]]
    resp = await client.delete(f"{base}/{task['id']}", headers=headers)
    assert resp.status == 204
    # The user id in the path is compared as a UUID, not as text.
    resp = await client.get(f"/api/{ann_id.upper()}/tasks", headers=headers)
    assert resp.status == 200


async def test_the_alias_routes_with_another_users_id_are_403(client, two_users):
    (ann_id, ann_token), (_bob_id, bob_token) = two_users
    task, _ = await make_task(client, ann_token)
    for other in (ann_id, str(uuid.uuid4()), "not-a-uuid"):
        base = f"/api/{other}/tasks"
        requests = [("GET", base, None), ("POST", base, {"title": "x"})]
        requests += item_requests(base, task["id"])
        for method, url, payload in requests:
            resp = await client.request(method, url, json=payload, headers=bearer(bob_token))
            await problem(resp, 403)
    resp = await client.get(f"/api/tasks/{task['id']}", headers=bearer(ann_token))
    assert (await resp.json())["title"] == task["title"]


async def test_every_task_route_needs_a_token(client, two_users):
    (ann_id, ann_token), _ = two_users
    task, _ = await make_task(client, ann_token)
    for prefix in prefixes(ann_id):
        requests = [("GET", prefix, None), ("POST", prefix, {"title": "x"})]
        requests += item_requests(prefix, task["id"])
        for method, url, payload in requests:
            resp = await client.request(method, url, json=payload)
            await problem(resp, 401)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
