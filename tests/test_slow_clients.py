"""Slow and idle clients cannot hold connections (service/internals.py
_HeadDeadline, service/jsonio.py): a request's head must arrive within
CLIENT_HEADER_TIMEOUT, its body within CLIENT_BODY_TIMEOUT, and an idle
kept-alive connection closes after KEEPALIVE_TIMEOUT; with one process and
with gunicorn's workers alike. The security review saw every such
connection held for 75 s (one process) or an hour (workers)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import base_env
from tests.launcher import HOST, launched

# Far above the deadlines under test, far below what the service did before.
CLOSED_WITHIN = 15
SHORT = {"CLIENT_HEADER_TIMEOUT": "1", "CLIENT_BODY_TIMEOUT": "1", "KEEPALIVE_TIMEOUT": "1"}


@pytest.fixture(params=[(), ("--workers", "2")], ids=["one process", "two workers"])
def service(request, migrated_database):
    with launched({**base_env(migrated_database), **SHORT}, *request.param) as running:
        yield running


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), CLOSED_WITHIN)


async def test_a_connection_that_sends_nothing_is_closed(service):
    reader, writer = await asyncio.open_connection(HOST, service.port)
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_a_head_trickled_byte_by_byte_is_cut_off(service):
    reader, writer = await asyncio.open_connection(HOST, service.port)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 1000

    async def trickle() -> None:
        # A slowloris client: one byte every 50 ms, each resetting nothing.
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        assert await closed_by_server(reader) == b""
        assert not sender.done()  # cut off mid-head, not after it
    finally:
        sender.cancel()
        writer.close()


async def test_a_kept_alive_connection_gets_the_full_deadline_for_each_head(service):
    reader, writer = await asyncio.open_connection(HOST, service.port)
    for _ in range(3):
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200")
        await reader.readuntil(b'"version":"0.1.0"}')
    # Then idle: closed after KEEPALIVE_TIMEOUT.
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_a_408(service):
    reader, writer = await asyncio.open_connection(HOST, service.port)
    writer.write(
        b"POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"email"'
    )
    answer = await closed_by_server(reader)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"application/problem+json" in answer
    assert b'"type":"/problems/request-timeout"' in answer
    writer.close()
