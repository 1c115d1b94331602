"""The request-context middleware (service/middlewares.py): the request id
on every response, errors included, and `Vary: Origin` on every response;
and the problem middleware's first check, of the Host."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import make_mocked_request

from service import middlewares
from service.app import create_app
from service.errors import BadRequest
from service.middlewares import MAX_GOOD_HOSTS, refuse_bad_head
from tests.conftest import make_settings
from tests.helpers import PASSWORD, TASKS, bearer, make_task, signup, user_token


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


async def raw(client, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send `head` as it is (the client library would refuse or fix some of
    these Hosts and targets) and read the answer up to the server's close."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head.encode("latin-1") + b"Connection: close\r\n\r\n" + body)
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest


async def listing_head(client, host_lines: str, version: str = "1.1") -> str:
    """A GET of a listing that has a next page, so its Link is built from the Host."""
    _, token = await user_token(client)
    for _ in range(2):
        await make_task(client, token)
    return f"GET {TASKS}?limit=1 HTTP/{version}\r\n{host_lines}Authorization: Bearer {token}\r\n"


@pytest.mark.parametrize(
    "host_lines",
    [
        # The security review's Hosts: a bare 500 (yarl refused them) or, the
        # last one, reflected into Link.
        "Host: a:b\r\n",
        "Host: a:99999999\r\n",
        "Host: a@b:c\r\n",
        "Host: x:1/../\r\n",
        "Host: evil.example/x?y=\r\n",
        "Host: " + "a" * 300 + "\r\n",
        "Host: a b\r\n",
    ],
)
async def test_a_bad_host_is_a_400_that_reflects_nothing(client, host_lines):
    status, rest = await raw(client, await listing_head(client, host_lines))
    assert status == 400
    assert b"application/problem+json" in rest
    assert b'"type":"/problems/bad-host"' in rest
    assert b"evil" not in rest
    assert b"a:b" not in rest
    assert (await client.get("/health")).status == 200


@pytest.mark.parametrize(
    "host", ["localhost:8000", "todo_api:8000", "api.example.com.", "127.0.0.1", "[::1]:443"]
)
async def test_a_good_host_is_used_for_the_next_link(client, host):
    status, rest = await raw(client, await listing_head(client, f"Host: {host}\r\n"))
    assert status == 200
    assert f"Link: <http://{host}{TASKS}?limit=1&cursor=".encode() in rest


@pytest.mark.parametrize("host_lines", ["Host: a\r\nHost: b\r\n", ""])
async def test_http_1_1_needs_exactly_one_host(client, host_lines):
    # RFC 9112 section 3.2; aiohttp's parser refuses these itself.
    status, rest = await raw(client, await listing_head(client, host_lines))
    assert status == 400
    assert b"application/problem+json" in rest


async def test_http_1_0_may_leave_host_out(client):
    status, _ = await raw(client, "GET /health HTTP/1.0\r\n")
    assert status == 200


def test_valid_hosts_are_remembered_a_bounded_few_and_bad_ones_never():
    def check(host: str) -> None:
        refuse_bad_head(make_mocked_request("GET", "/health", headers={"Host": host}))

    for i in range(MAX_GOOD_HOSTS + 10):
        check(f"host-{i}.example:8000")
        check(f"host-{i}.example:8000")  # the second time from the set
    assert len(middlewares._GOOD_HOSTS) <= MAX_GOOD_HOSTS
    for bad in ("a:b", "evil.example/x?y=", "a b"):
        for _ in range(2):  # refused again: a bad host is never remembered
            with pytest.raises(BadRequest):
                check(bad)


async def test_every_answer_says_nosniff(client):
    answers = [
        await client.get(path) for path in ("/health", "/nope", "/openapi.json", "/api/tasks")
    ]
    for resp in answers:
        assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.url
    status, rest = await raw(client, "GET /\x01 HTTP/1.1\r\n")  # aiohttp's own 400
    assert status == 400
    assert b"\r\nX-Content-Type-Options: nosniff\r\n" in rest


async def test_no_answer_with_account_or_task_data_may_be_stored(client):
    user = await user_token(client)
    auth = bearer(user.token)
    task = (await make_task(client, user.token)).task
    answers = [
        await client.post(
            "/api/auth/signin", json={"email": "ann@example.com", "password": PASSWORD}
        ),
        await client.get("/api/auth/me", headers=auth),
        await client.patch("/api/auth/me", headers=auth, json={"name": "Ann B"}),
        await client.get(TASKS, headers=auth),
        await client.get("/api/tags", headers=auth),
        await client.get("/api/tasks/summary", headers=auth),
        await client.post(TASKS, headers=auth, json={"title": "another"}),
        await client.patch(f"{TASKS}/{task['id']}", headers=auth, json={"title": "changed"}),
        await client.get(f"{TASKS}/3b241101-e2bb-4255-8caf-4136c566a962", headers=auth),  # 404
        await client.post(TASKS, headers=auth, json={"title": ""}),  # 422
        await client.get(TASKS),  # 401
    ]
    for resp in answers:
        assert resp.headers.get("Cache-Control") == "no-store", (resp.method, resp.url)
    # Where revalidation is offered (an ETag, If-None-Match), a browser may
    # keep the task but must ask each time.
    resp = await client.get(f"{TASKS}/{task['id']}", headers=auth)
    assert resp.headers["Cache-Control"] == "private, no-cache"
    assert resp.headers["ETag"]


def host_of(client) -> str:
    return f"{client.server.host}:{client.server.port}"


async def absolute_form(client, authority: str) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """A listing with a next page and a create, each with a request target in
    absolute form naming `authority`, and the Host the client connected to."""
    _, token = await user_token(client)
    for _ in range(2):
        await make_task(client, token)
    head = f"Host: {host_of(client)}\r\nAuthorization: Bearer {token}\r\n"
    listing = await raw(client, f"GET http://{authority}{TASKS}?limit=1 HTTP/1.1\r\n{head}")
    body = b'{"title": "t"}'
    create = await raw(
        client,
        f"POST http://{authority}{TASKS} HTTP/1.1\r\n{head}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n",
        body,
    )
    return listing, create


@pytest.mark.parametrize(
    "authority", ["evil.example@x:1", "evil.example", "evil@{host}", "127.0.0.1:1"]
)
async def test_an_absolute_target_naming_another_authority_is_a_400(client, authority):
    for status, rest in await absolute_form(client, authority.format(host=host_of(client))):
        assert status == 400
        assert b'"type":"/problems/bad-target"' in rest
        assert b"evil" not in rest
        assert b"127.0.0.1:1" not in rest


async def test_urls_come_from_the_host_header_whatever_the_target_form(client):
    host = host_of(client)
    (status, listing), (created, create) = await absolute_form(client, host)
    assert status == 200
    assert f"Link: <http://{host}{TASKS}?limit=1&cursor=".encode() in listing
    assert created == 201
    assert f"Location: http://{host}{TASKS}/".encode() in create


async def test_urls_come_from_public_url_when_set(aiohttp_client, migrated_database):
    settings = make_settings(DATABASE_URL=migrated_database, PUBLIC_URL="https://api.example.com")
    client = await aiohttp_client(create_app(settings))
    (status, listing), (created, create) = await absolute_form(client, "api.example.com")
    assert status == 200
    assert f"Link: <https://api.example.com{TASKS}?limit=1&cursor=".encode() in listing
    assert created == 201
    assert f"Location: https://api.example.com{TASKS}/".encode() in create
