"""GET /health and GET /ready (service/health/routes.py)."""

from __future__ import annotations

from service.app import create_app
from tests.conftest import make_settings
from tests.helpers import problem


async def test_health_answers_the_contract(client):
    resp = await client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "app": "TODO API", "version": "0.1.0"}
    assert resp.headers["X-Request-ID"]


async def test_health_uses_app_name(aiohttp_client, migrated_database):
    app = create_app(make_settings(DATABASE_URL=migrated_database, APP_NAME="Acme Tasks"))
    client = await aiohttp_client(app)
    assert (await (await client.get("/health")).json())["app"] == "Acme Tasks"


async def test_ready_when_the_schema_is_current(client):
    resp = await client.get("/ready")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "database": "ok"}


async def test_with_the_database_down_health_is_ok_and_ready_is_503(
    aiohttp_client, unreachable_database_url
):
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=unreachable_database_url)))
    assert (await client.get("/health")).status == 200
    resp = await client.get("/ready")
    body = await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) > 0
    assert "127.0.0.1" not in str(body)  # no driver message, no address
    assert "unreachable (Connection refused)" in body["detail"]  # but which failure


async def test_ready_is_503_until_the_schema_is_migrated(aiohttp_client, empty_database):
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=empty_database)))
    resp = await client.get("/ready")
    body = await problem(resp, 503)
    assert "migrate" in body["detail"]
    assert resp.headers["Retry-After"]
