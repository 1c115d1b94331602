from __future__ import annotations

import logging

import pytest
from aiohttp import web

from service.app import create_app
from service.jsonio import read_json
from tests.conftest import make_settings
from tests.helpers import bearer, signup

PROBLEM = "application/problem+json"


def assert_problem(resp, body, status):
    assert resp.status == status
    assert resp.content_type == PROBLEM
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["instance"]
    assert "Traceback" not in str(body)


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
    body = await resp.json(content_type=PROBLEM)
    assert_problem(resp, body, 503)
    assert int(resp.headers["Retry-After"]) > 0
    assert "127.0.0.1" not in str(body)  # no driver message, no address
    assert "unreachable (Connection refused)" in body["detail"]  # but which failure


async def test_ready_is_503_until_the_schema_is_migrated(aiohttp_client, empty_database):
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=empty_database)))
    resp = await client.get("/ready")
    body = await resp.json(content_type=PROBLEM)
    assert_problem(resp, body, 503)
    assert "migrate" in body["detail"]
    assert resp.headers["Retry-After"]


async def test_an_unknown_path_is_a_404_problem(client):
    resp = await client.get("/no/such/thing")
    assert_problem(resp, await resp.json(content_type=PROBLEM), 404)


async def test_a_wrong_method_is_a_405_problem_with_allow(client):
    resp = await client.delete("/health")
    body = await resp.json(content_type=PROBLEM)
    assert_problem(resp, body, 405)
    assert "GET" in resp.headers["Allow"]


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


# --- body rules and the error path, on routes that exist only in the test --


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(await read_json(request))


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
async def body_client(aiohttp_client, settings):
    app = create_app(settings)
    app.router.add_post("/test/echo", _echo)
    app.router.add_get("/test/boom", _boom)
    return await aiohttp_client(app)


async def test_json_round_trips(body_client):
    resp = await body_client.post("/test/echo", json={"a": 1})
    assert resp.status == 200
    assert await resp.json() == {"a": 1}


@pytest.mark.parametrize(
    "raw", [b"{", b"{'a': 1}", b"\xff\xfe", b"[1,]", b"NaN", b'{"a": "\\ud800"}', b"   "]
)
async def test_malformed_json_is_a_400_problem(body_client, raw):
    resp = await body_client.post(
        "/test/echo", data=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(resp, await resp.json(content_type=PROBLEM), 400)


async def test_a_missing_body_is_a_400_problem(body_client):
    resp = await body_client.post("/test/echo")
    assert_problem(resp, await resp.json(content_type=PROBLEM), 400)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_a_body_that_is_not_json_is_a_415_problem(body_client, content_type):
    resp = await body_client.post(
        "/test/echo", data=b'{"a": 1}', headers={"Content-Type": content_type}
    )
    assert_problem(resp, await resp.json(content_type=PROBLEM), 415)


async def test_a_body_over_64_kib_is_a_413_problem(body_client):
    big = b'{"a": "' + b"x" * (64 * 1024) + b'"}'
    resp = await body_client.post(
        "/test/echo", data=big, headers={"Content-Type": "application/json"}
    )
    assert_problem(resp, await resp.json(content_type=PROBLEM), 413)
    # The service keeps serving.
    assert (await body_client.get("/health")).status == 200


async def test_a_bug_is_a_bare_500_logged_with_the_request_id(body_client, caplog):
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        resp = await body_client.get("/test/boom", headers={"X-Request-ID": "bug-42"})
    body = await resp.json(content_type=PROBLEM)
    assert_problem(resp, body, 500)
    assert "hunter2" not in str(body)
    assert "RuntimeError" not in str(body)
    record = next(r for r in caplog.records if r.name == "service.errors")
    assert record.request_id == "bug-42"
    assert record.exc_info is not None


# --- CORS -----------------------------------------------------------------


async def test_cors_preflight_from_the_frontend(client):
    resp = await client.options(
        "/health",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"


async def test_cors_exposes_the_contract_headers(client):
    resp = await client.get("/health", headers={"Origin": "http://localhost:3000"})
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
    resp = await client.get("/api/tasks", headers={"Origin": "http://localhost:3000"})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "www-authenticate" in resp.headers["Access-Control-Expose-Headers"].lower()


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


async def test_cors_ignores_other_origins(client):
    resp = await client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_preflight_for_a_conditional_task_patch(client):
    resp = await client.options(
        "/api/tasks/3b241101-e2bb-4255-8caf-4136c566a962",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert resp.status == 200  # no token needed for a preflight
    assert resp.headers["Access-Control-Allow-Methods"] == "PATCH"
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed


async def _raw(client, data: bytes) -> bytes:
    import asyncio

    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), timeout=10)
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"GET /he\x00lth HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["header over 8 KiB", "header without colon", "NUL in the target"],
)
async def test_malformed_http_gets_a_problem_document_too(client, raw):
    answer = await _raw(client, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    assert b" 400 " in head.split(b"\r\n")[0]
    assert b"application/problem+json" in head.lower()
    assert b'"status":400' in body
    assert b"aaaa" not in body  # the input is not echoed
    assert (await client.get("/health")).status == 200
