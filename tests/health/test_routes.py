"""GET /health and GET /ready (service/health/routes.py)."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from service.app import create_app
from tests.conftest import ADMIN_URL, make_settings
from tests.helpers import problem
from tests.launcher import free_port


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
    assert await resp.json() == {"status": "ok", "database": "ok", "events": "poll"}


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


def _admin_url_with(user: str | None = None, database: str | None = None, port: int | None = None):
    parts = urlsplit(ADMIN_URL)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user or parts.username}@{host}:{port or parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database or 'postgres'}"))


# What is wrong: the kind /ready names, and the server's reason the log keeps.
FAILURES = {
    "no such role": (
        "Not ready: the database refused the service's credentials.",
        'role "{name}" does not exist',
    ),
    "no such database": (
        "Not ready: the database named in DATABASE_URL does not exist.",
        'database "{name}" does not exist',
    ),
    "unreachable": (
        "Not ready: the database is unreachable (Connection refused).",
        "Connect call failed ('127.0.0.1', {port})",
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
async def test_ready_names_the_kind_of_failure_without_the_servers_words(
    aiohttp_client, caplog, failure
):
    detail, reason = FAILURES[failure]
    name, port = f"nosuch_{uuid.uuid4().hex[:12]}", free_port()
    url = {
        "no such role": _admin_url_with(user=name),
        "no such database": _admin_url_with(database=name),
        "unreachable": _admin_url_with(port=port),
    }[failure]
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=url)))
    with caplog.at_level(logging.WARNING, logger="service.db"):
        body = await problem(await client.get("/ready"), 503)
    assert body["detail"] == detail
    for word in (name, str(port), "127.0.0.1", "postgres"):
        assert word not in str(body)
    (line,) = [r.getMessage() for r in caplog.records if "connect to" in r.getMessage()]
    assert reason.format(name=name, port=port) in line


async def test_ready_is_503_until_the_schema_is_migrated(aiohttp_client, empty_database):
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=empty_database)))
    resp = await client.get("/ready")
    body = await problem(resp, 503)
    assert "migrate" in body["detail"]
    assert resp.headers["Retry-After"]
