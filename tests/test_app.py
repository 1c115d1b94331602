"""create_app's wiring (service/app.py): CORS for the frontend's origin,
on every answer, errors and aiohttp's own 400s included
(service/middlewares.py, service/internals.py)."""

from __future__ import annotations

import asyncio

import pytest
from multidict import CIMultiDict

from service.app import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, TASKS, bearer, user_token

FRONTEND = "http://localhost:3000"
FOREIGN = "https://evil.example.com"
A_TASK = "/api/tasks/3b241101-e2bb-4255-8caf-4136c566a962"


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


def assert_cors(headers, origin: str) -> None:
    """The CORS headers for `origin` when it is the frontend's, none else."""
    vary = {v.strip().lower() for v in ",".join(headers.getall("Vary", [])).split(",")}
    assert "origin" in vary
    if origin == FRONTEND:
        assert headers["Access-Control-Allow-Origin"] == FRONTEND
        assert headers["Access-Control-Allow-Credentials"] == "true"
        exposed = headers["Access-Control-Expose-Headers"].lower()
        assert "x-request-id" in exposed
        assert "retry-after" in exposed
    else:
        assert not [h for h in headers if h.lower().startswith("access-control-")]


async def raw_answer(client, head: bytes) -> tuple[int, bytes]:
    """Send `head` as it is; the status and the head of the answer."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    answer = await reader.read()
    writer.close()
    answer_head = answer.partition(b"\r\n\r\n")[0]
    return int(answer_head.split(b" ", 2)[1]), answer_head


def raw_headers(answer_head: bytes) -> CIMultiDict[str]:
    lines = answer_head.decode("latin-1").split("\r\n")[1:]
    return CIMultiDict(line.split(": ", 1) for line in lines)


@pytest.mark.parametrize("origin", [FRONTEND, FOREIGN])
async def test_every_error_is_readable_by_the_frontend_and_only_by_it(
    aiohttp_client, migrated_database, unreachable_database_url, origin
):
    limited = make_settings(DATABASE_URL=migrated_database, RATE_LIMIT_AUTH_PER_IP="1/minute")
    client = await aiohttp_client(create_app(limited))
    down = await aiohttp_client(create_app(make_settings(DATABASE_URL=unreachable_database_url)))
    user = await user_token(client)
    o = {"Origin": origin}
    signin = {"email": "ann@example.com", "password": PASSWORD}
    answers = {
        401: await client.get(TASKS, headers=o),
        404: await client.get("/api/nope", headers=o),
        405: await client.post(A_TASK, headers={**o, **bearer(user.token)}, json={}),
        413: await client.post(
            TASKS, headers={**o, **bearer(user.token)}, json={"title": "x" * 70000}
        ),
        415: await client.post(TASKS, headers={**o, **bearer(user.token)}, data="{}"),
        429: await client.post("/api/auth/signin", headers=o, json=signin),
        503: await down.post("/api/auth/signin", headers=o, json=signin),
    }
    for status, resp in answers.items():
        assert resp.status == status, (status, await resp.text())
        assert_cors(resp.headers, origin)
    # aiohttp's own 400 (a header over its 8190-byte limit): the Origin is
    # read from the refused head.
    status, head = await raw_answer(
        client,
        b"GET /api/tasks HTTP/1.1\r\nHost: x\r\nOrigin: " + origin.encode() + b"\r\n"
        b"Authorization: Bearer " + b"a" * 9000 + b"\r\n\r\n",
    )
    assert status == 400
    assert_cors(raw_headers(head), origin)


@pytest.mark.parametrize("path", ["/api/nope", A_TASK])
async def test_a_preflight_passes_wherever_the_request_goes(client, path):
    # The browser then sends the request and shows its 404 or 405.
    resp = await preflight(client, path, "POST", "authorization, content-type")
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert resp.headers["Access-Control-Allow-Methods"] == "POST"


async def test_a_preflight_from_another_origin_is_not_allowed(client):
    resp = await client.options(
        TASKS, headers={"Origin": FOREIGN, "Access-Control-Request-Method": "GET"}
    )
    assert resp.status == 405
    assert_cors(resp.headers, FOREIGN)
