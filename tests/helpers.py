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
