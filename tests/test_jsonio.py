"""JSON bodies in and out (service/jsonio.py): the body rules of API.md,
on a route that exists only in the test."""

from __future__ import annotations

import pytest
from aiohttp import web

from service.app import create_app
from service.jsonio import read_json
from tests.helpers import problem


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
