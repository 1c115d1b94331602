"""A validly signed token whose account is gone is a 401 on every route:
never an empty list, never a 404 that suggests the account still exists."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import bearer, make_task, problem, user_token

ROUTES = [
    ("GET", "/api/auth/me"),
    ("GET", "/api/tasks"),
    ("GET", "/api/tasks?completed=true&q=nothing"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/{task}"),
    ("PUT", "/api/tasks/{task}"),
    ("PATCH", "/api/tasks/{task}"),
    ("PATCH", "/api/tasks/{task}/complete"),
    ("DELETE", "/api/tasks/{task}"),
    ("GET", "/api/tasks/{other}"),
    ("GET", "/api/tasks/not-a-uuid"),
    ("DELETE", "/api/tasks/not-a-uuid"),
    ("GET", "/api/{user}/tasks"),
    ("POST", "/api/{user}/tasks"),
    ("GET", "/api/{user}/tasks/{task}"),
    ("PATCH", "/api/{user}/tasks/{task}/complete"),
]


def delete_account(database_url: str, user_id: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_deleted_accounts_token_is_401(client, migrated_database, method, path):
    user_id, token = await user_token(client)
    task, _ = await make_task(client, token)
    delete_account(migrated_database, user_id)

    url = path.format(task=task["id"], other=uuid.uuid4(), user=user_id)
    body = {"title": "t"} if method in ("POST", "PUT", "PATCH") else None
    if url.endswith("/complete"):
        body = None  # a toggle
    resp = await client.request(method, url, json=body, headers=bearer(token))
    problem_body = await problem(resp, 401)
    assert "no longer exists" in problem_body["detail"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_deleted_better_auth_accounts_token_is_401(
    ba_client, better_auth, migrated_database
):
    user = await better_auth.sign_up()
    token = await better_auth.token(user)
    task, _ = await make_task(ba_client, token)
    delete_account(migrated_database, task["user_id"])

    for url in ("/api/tasks", f"/api/{user.id}/tasks", f"/api/tasks/{task['id']}"):
        resp = await ba_client.get(url, headers=bearer(token))
        await problem(resp, 401)


async def test_an_empty_list_of_a_live_account_is_still_200(client):
    _, token = await user_token(client)
    resp = await client.get("/api/tasks", headers=bearer(token))
    assert resp.status == 200
    assert await resp.json() == []
    resp = await client.get(f"/api/tasks/{uuid.uuid4()}", headers=bearer(token))
    await problem(resp, 404)
