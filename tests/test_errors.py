"""Every error is a problem document (service/errors.py): aiohttp's own
404 and 405, a bug, and requests too malformed to reach a handler."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from service.app import create_app
from tests.helpers import problem


async def test_an_unknown_path_is_a_404_problem(client):
    await problem(await client.get("/no/such/thing"), 404)


async def test_a_wrong_method_is_a_405_problem_with_allow(client):
    resp = await client.delete("/health")
    await problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
async def boom_client(aiohttp_client, settings):
    """The app with a route, only in the test, that fails like a bug."""
    app = create_app(settings)
    app.router.add_get("/test/boom", _boom)
    return await aiohttp_client(app)


async def test_a_bug_is_a_bare_500_logged_with_the_request_id(boom_client, caplog):
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        resp = await boom_client.get("/test/boom", headers={"X-Request-ID": "bug-42"})
    body = await problem(resp, 500)
    assert "hunter2" not in str(body)
    assert "RuntimeError" not in str(body)
    record = next(r for r in caplog.records if r.name == "service.errors")
    assert record.request_id == "bug-42"
    assert record.exc_info is not None


async def _raw(client, data: bytes) -> bytes:
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
