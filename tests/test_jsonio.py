"""JSON bodies in and out (service/jsonio.py): the body rules of API.md,
on a route that exists only in the test."""

from __future__ import annotations

import pytest
from aiohttp import web

from service.app import create_app
from service.jsonio import read_json
from tests.helpers import bearer, make_task, problem, user_token


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(await read_json(request))


@pytest.fixture
async def echo_client(aiohttp_client, settings):
    app = create_app(settings)
    app.router.add_post("/test/echo", _echo)
    return await aiohttp_client(app)


async def test_json_round_trips(echo_client):
    resp = await echo_client.post("/test/echo", json={"a": 1})
    assert resp.status == 200
    assert await resp.json() == {"a": 1}


@pytest.mark.parametrize(
    "raw", [b"{", b"{'a': 1}", b"\xff\xfe", b"[1,]", b"NaN", b'{"a": "\\ud800"}', b"   "]
)
async def test_malformed_json_is_a_400_problem(echo_client, raw):
    resp = await echo_client.post(
        "/test/echo", data=raw, headers={"Content-Type": "application/json"}
    )
    await problem(resp, 400)


async def test_a_missing_body_is_a_400_problem(echo_client):
    await problem(await echo_client.post("/test/echo"), 400)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_a_body_that_is_not_json_is_a_415_problem(echo_client, content_type):
    resp = await echo_client.post(
        "/test/echo", data=b'{"a": 1}', headers={"Content-Type": content_type}
    )
    await problem(resp, 415)


async def test_a_body_over_64_kib_is_a_413_problem(echo_client):
    big = b'{"a": "' + b"x" * (64 * 1024) + b'"}'
    resp = await echo_client.post(
        "/test/echo", data=big, headers={"Content-Type": "application/json"}
    )
    await problem(resp, 413)
    # The service keeps serving.
    assert (await echo_client.get("/health")).status == 200


# Each holds an object that names a key twice, at the top, nested, in a
# list, or spelled differently: in the raw text, or escaped.
REPEATED = [
    b'{"title": "a", "title": "b"}',
    b'{"title": "a", "title": "a"}',
    b'{"a": {"b": 1, "c": 2, "b": 1}}',
    b'[{"x": 1}, {"x": 1, "y": [], "x": 2}]',
    b'{"a": 1, "\\u0061": 2}',
    b'{"t\\u00e9": 1, "t\xc3\xa9": 2}',
    b'{"a": "\\u0022\\u0022", "a": 1}',
    b'{"a": 1, "a": "\\u0022\\u0022"}',
    b'{"a": "\\"", "a": "\\""}',
    b'{"": 1, "": 2}',
    b'{"a": [], "a": {}}',
    b'{"a": "line\\nbreak", "b": {"c": null, "c": null}}',
]


# Keys that differ (in case, in Unicode form, by an escape), and one key
# in two objects, are not repeated: read as sent.
NOT_REPEATED = [
    (b'{"a": 1, "A": 2}', {"a": 1, "A": 2}),
    (b'{"e\\u0301": 1, "\xc3\xa9": 2}', {"e\u0301": 1, "\u00e9": 2}),
    (b'{"a\\"": 1, "a": 2, "b": "\\"\\"\\u0022"}', {'a"': 1, "a": 2, "b": '"""'}),
    (b'[{"a": 1}, {"a": 1}, {"b": {"a": "x:y"}}]', [{"a": 1}, {"a": 1}, {"b": {"a": "x:y"}}]),
    (b'{"a": "two\\nlines", "b": ["tab\\there"]}', {"a": "two\nlines", "b": ["tab\there"]}),
    (b'{"a": "\\\\", "b": "c:\\\\d"}', {"a": "\\", "b": "c:\\d"}),
]


async def test_a_repeated_key_is_a_400_problem_and_only_that(echo_client):
    json_type = {"Content-Type": "application/json"}
    for raw in REPEATED:
        resp = await echo_client.post("/test/echo", data=raw, headers=json_type)
        body = await problem(resp, 400)
        assert body["type"] == "/problems/repeated-key", raw
    for raw, expected in NOT_REPEATED:
        resp = await echo_client.post("/test/echo", data=raw, headers=json_type)
        assert resp.status == 200, await resp.text()
        assert await resp.json() == expected


async def test_every_route_that_reads_json_refuses_a_repeated_key(client):
    """Each operation the OpenAPI document gives a JSON body, with the
    caller's own ids in its path: a 400 before anything is done."""
    user = await user_token(client)
    task, _ = await make_task(client, user.token, title="kept")
    spec = await (await client.get("/openapi.json")).json()
    sent = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if not isinstance(op, dict) or "requestBody" not in op:
                continue
            url = path.replace("{id}", task["id"]).replace("{user_id}", user.id)
            for raw in (b'{"title": "a", "title": "b"}', b'{"x": {"y": 1, "y": 1}}'):
                resp = await client.request(
                    method,
                    url,
                    data=raw,
                    headers={**bearer(user.token), "Content-Type": "application/json"},
                )
                body = await problem(resp, 400)
                assert body["type"] == "/problems/repeated-key", (method, path)
                sent += 1
    assert sent >= 2 * 10
    # Nothing was changed: the task and the account are as they were.
    resp = await client.get(f"/api/tasks/{task['id']}", headers=bearer(user.token))
    assert (resp.status, (await resp.json())["title"]) == (200, "kept")
