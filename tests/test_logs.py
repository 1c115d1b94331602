"""The access line: one per request, written by aiohttp's access-log hook,
so requests aiohttp answers on its own (malformed HTTP) have one too."""

from __future__ import annotations

import asyncio
import logging

import pytest

from service import logs
from service.app import create_app


@pytest.fixture
async def server(aiohttp_server, settings):
    return await aiohttp_server(
        create_app(settings), access_log=logs.ACCESS, access_log_class=logs.AccessLogger
    )


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.access"]


async def test_a_request_has_one_access_line_with_its_id_and_route(server, aiohttp_client, caplog):
    caplog.set_level(logging.INFO, "service.access")
    client = await aiohttp_client(server)
    resp = await client.get("/api/tasks/not-a-uuid", headers={"X-Request-ID": "log-1"})
    assert resp.status == 401
    await client.close()  # the line is written once the response is sent
    (record,) = access_records(caplog)
    assert record.request_id == "log-1"
    assert (record.method, record.path, record.status) == ("GET", "/api/tasks/not-a-uuid", 401)
    assert record.route == "/api/tasks/{id}"
    assert record.duration_ms >= 0
    assert record.getMessage().startswith("GET /api/tasks/not-a-uuid 401 ")


async def test_malformed_http_has_an_access_line_too(server, caplog):
    caplog.set_level(logging.INFO, "service.access")
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.read(65536), timeout=10)
    writer.close()
    await writer.wait_closed()
    assert b" 400 " in head.split(b"\r\n")[0]
    await server.close()
    (record,) = access_records(caplog)
    assert record.status == 400
    assert record.route is None
    assert record.request_id is None  # no middleware ran: there is no id to give


@pytest.mark.parametrize("formatter", [logs.JsonFormatter(), logs.TextFormatter()])
def test_a_log_record_and_an_access_line_come_from_the_same_formatter(formatter):
    record = logging.makeLogRecord(
        {"name": "service.access", "levelname": "INFO", "msg": "GET / 200 1.00ms"}
    )
    record.request_id = "rid-1"
    record.created = 1_790_000_000.25
    entry = logs.Entry(record.created, "INFO", "service.access", "GET / 200 1.00ms", "rid-1", {})
    assert formatter.format(record) == formatter.line(entry)
