"""The request-context middleware (service/middlewares.py): the request id
on every response, errors included, and `Vary: Origin` on every response."""

from __future__ import annotations

import pytest

from tests.helpers import bearer, signup


async def test_the_request_id_is_echoed_when_sane(client):
    resp = await client.get("/health", headers={"X-Request-ID": "abc-123.x"})
    assert resp.headers["X-Request-ID"] == "abc-123.x"


@pytest.mark.parametrize("given", ["x" * 129, "has space", "ünï", ""])
async def test_an_insane_request_id_is_replaced(client, given):
    resp = await client.get("/health", headers={"X-Request-ID": given})
    assert resp.headers["X-Request-ID"] != given
    assert len(resp.headers["X-Request-ID"]) == 32


async def test_errors_carry_the_request_id_too(client):
    resp = await client.get("/nope", headers={"X-Request-ID": "trace-1"})
    assert resp.headers["X-Request-ID"] == "trace-1"


def vary(resp) -> list[str]:
    return [v.strip().lower() for v in ",".join(resp.headers.getall("Vary", [])).split(",")]


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://evil.example.com", None])
async def test_every_response_varies_by_origin(client, origin):
    headers = {"Origin": origin} if origin else {}
    for path in ("/health", "/api/tasks", "/openapi.json"):
        resp = await client.get(path, headers=headers)
        assert vary(resp).count("origin") == 1, path


async def test_vary_keeps_authorization_on_task_responses(client):
    token = (await signup(client))["access_token"]
    resp = await client.get(
        "/api/tasks", headers={"Origin": "http://localhost:3000", **bearer(token)}
    )
    assert resp.status == 200
    assert {"authorization", "origin"} <= set(vary(resp))
