"""Small helpers the tests share."""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"


async def problem(resp, status: int) -> dict[str, Any]:
    """Assert `resp` is a problem document with `status`; return its body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    body = await resp.json(content_type=PROBLEM)
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["instance"] == resp.url.path
    assert "Traceback" not in str(body)
    return body


async def signup(client, email="ann@example.com", password="correct horse", name="Ann"):
    resp = await client.post(
        "/api/auth/signup", json={"email": email, "password": password, "name": name}
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def user_token(client, email="ann@example.com") -> tuple[str, str]:
    """Sign up a user; (user id, token)."""
    body = await signup(client, email=email)
    return body["user"]["id"], body["access_token"]


async def make_task(client, token: str, **fields) -> tuple[dict, str]:
    """Create a task; (task, its ETag)."""
    payload = {"title": "a task", **fields}
    resp = await client.post("/api/tasks", json=payload, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return await resp.json(), resp.headers["ETag"]
