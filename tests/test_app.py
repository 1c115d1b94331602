"""create_app's wiring (service/app.py): CORS for the frontend's origin."""

from __future__ import annotations

FRONTEND = "http://localhost:3000"


async def preflight(client, path: str, method: str, request_headers: str):
    """An OPTIONS preflight from the frontend; answered 200 without a token."""
    resp = await client.options(
        path,
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": request_headers,
        },
    )
    assert resp.status == 200  # no token needed for a preflight
    return resp


async def test_cors_preflight_from_the_frontend(client):
    resp = await preflight(client, "/health", "GET", "Authorization")
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"


async def test_cors_exposes_the_contract_headers(client):
    resp = await client.get("/health", headers={"Origin": FRONTEND})
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {
        "etag",
        "location",
        "link",
        "x-request-id",
        "retry-after",
        "www-authenticate",
        "ratelimit",
        "ratelimit-policy",
    } <= exposed


async def test_a_401_is_readable_cross_origin(client):
    resp = await client.get("/api/tasks", headers={"Origin": FRONTEND})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "www-authenticate" in resp.headers["Access-Control-Expose-Headers"].lower()


async def test_cors_ignores_other_origins(client):
    resp = await client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_preflight_for_a_conditional_task_patch(client):
    resp = await preflight(
        client,
        "/api/tasks/3b241101-e2bb-4255-8caf-4136c566a962",
        "PATCH",
        "authorization, content-type, if-match",
    )
    assert resp.headers["Access-Control-Allow-Methods"] == "PATCH"
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed
