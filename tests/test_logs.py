"""Log lines (service/logs.py): JSON or text, the request id on each, the
access line once per request, written by aiohttp's access-log hook, so
requests aiohttp answers on its own (malformed HTTP) have one too."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import urllib.request
import uuid

import pytest
from yarl import URL

from service import logs
from service.app import create_app
from service.auth.tokens import TokenService
from tests.conftest import base_env, make_settings
from tests.helpers import bearer, user_token
from tests.launcher import HOST, http_get, launched


def test_logs_are_json_lines_with_the_request_id_on_every_line(unreachable_database_url):
    env = {**base_env(unreachable_database_url), "LOG_FORMAT": "json"}
    with launched(env) as service:
        req = urllib.request.Request(service.url + "/ready", headers={"X-Request-ID": "ops-42"})  # noqa: S310
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=10)  # noqa: S310
        service.stop()
        lines = [json.loads(line) for line in service.output().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == "ops-42"]
    access = [line for line in mine if line["logger"] == "service.access"]
    assert len(access) == 1
    assert access[0]["method"] == "GET"
    assert access[0]["path"] == "/ready"
    assert access[0]["status"] == 503
    assert access[0]["duration_ms"] >= 0
    assert access[0]["client"] == "127.0.0.1"
    assert "user_id" not in access[0]  # no token was checked
    # The warning about the 503 was logged inside the request: same id.
    assert any(line["level"] == "WARNING" and line["logger"] != "service.access" for line in mine)
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line)


def test_text_logs_are_readable_lines_with_the_request_id(migrated_database):
    env = {**base_env(migrated_database), "LOG_FORMAT": "text"}
    with launched(env) as service:
        assert http_get(service.url + "/health", {"X-Request-ID": "txt-7"}).status == 200
        assert service.stop() == 0
        lines = service.output().splitlines()
    access = [line for line in lines if "[txt-7]" in line]
    assert len(access) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    service\.access \[txt-7\] "
        r"127\.0\.0\.1 GET /health 200 \d+\.\d\dms",
        access[0],
    ), access[0]
    assert any(line.endswith("stopped") for line in lines)  # flushed at exit, in order


@pytest.fixture
async def server(aiohttp_server, settings):
    return await aiohttp_server(create_app(settings))


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.access"]


async def test_a_request_has_one_access_line_with_its_id_and_route(server, aiohttp_client, caplog):
    caplog.set_level(logging.INFO, "service.access")
    client = await aiohttp_client(server)
    resp = await client.get("/api/tasks/not-a-uuid", headers={"X-Request-ID": "log-1"})
    assert resp.status == 401
    (record,) = access_records(caplog)
    assert record.request_id == "log-1"
    assert (record.method, record.path, record.status) == ("GET", "/api/tasks/not-a-uuid", 401)
    assert record.route == "/api/tasks/{id}"
    assert record.duration_ms >= 0
    assert record.client == "127.0.0.1"
    assert not hasattr(record, "user_id")  # the token was refused: nobody is known
    assert record.getMessage() == (
        f"127.0.0.1 GET /api/tasks/not-a-uuid 401 {record.duration_ms:.2f}ms"
    )


async def test_the_access_line_names_the_client_and_the_user(server, aiohttp_client, caplog):
    client = await aiohttp_client(server)
    user = await user_token(client)
    caplog.set_level(logging.INFO, "service.access")
    resp = await client.get("/api/tasks", headers={**bearer(user.token), "X-Request-ID": "log-2"})
    assert resp.status == 200
    (record,) = [r for r in access_records(caplog) if r.request_id == "log-2"]
    assert record.client == "127.0.0.1"
    assert str(record.user_id) == user.id
    assert record.getMessage().startswith("127.0.0.1 GET /api/tasks 200 ")
    assert record.getMessage().endswith(f" user {user.id}")
    formatted = json.loads(logs.JsonFormatter().format(record))
    assert (formatted["client"], formatted["user_id"]) == ("127.0.0.1", user.id)


async def test_a_path_cannot_forge_a_log_line(server, aiohttp_client, caplog):
    client = await aiohttp_client(server)
    caplog.set_level(logging.INFO, "service.access")
    forged = "/x%0A2026-11-28 10:00:00,000 INFO    service.access [-] GET /admin 200"
    url = URL(forged.replace(" ", "%20"), encoded=True)
    resp = await client.get(url, headers={"X-Request-ID": "log-3"})
    assert resp.status == 404
    (record,) = [r for r in access_records(caplog) if r.request_id == "log-3"]
    assert "\n" not in logs.TextFormatter().format(record)
    assert "/x\\n2026-11-28" in record.getMessage()
    assert record.path == "/x\n2026-11-28 10:00:00,000 INFO    service.access [-] GET /admin 200"


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
    assert record.duration_ms is None  # nor a start to time from
    assert record.client == "127.0.0.1"  # the TCP peer: no header of it is trusted
    assert record.getMessage() == "127.0.0.1 UNKNOWN / 400"


@pytest.mark.parametrize("formatter", [logs.JsonFormatter(), logs.TextFormatter()])
def test_a_log_record_and_an_access_line_come_from_the_same_formatter(formatter):
    record = logging.makeLogRecord(
        {"name": "service.access", "levelname": "INFO", "msg": "GET / 200 1.00ms"}
    )
    record.request_id = "rid-1"
    record.created = 1_790_000_000.25
    entry = logs.Entry(record.created, "INFO", "service.access", "GET / 200 1.00ms", "rid-1", {})
    assert formatter.format(record) == formatter.line(entry)


# Encoded in a path (aiohttp decodes them): a line break, a carriage return,
# a terminal escape, a Unicode line separator; the last raw in a header too
# (the parser refuses control characters in one).
FORGERIES = ["%0A", "%0D", "%1B[31m", "%E2%80%A8"]
FORGED_HEADER = b"User-Agent: x\xe2\x80\xa8fake\r\n"
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ +[\w.]+ \[[^\]]*\] ")


def raw_get(port: int, target: str, headers: bytes) -> bytes:
    """Send a GET exactly as written; the answer, read to the server's close."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        head = f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
        sock.sendall(head.encode() + headers + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_request_cannot_forge_a_log_line(unreachable_database_url, fmt):
    """A path ends up in the access line and, for a 503, in the warning
    about it (problem_middleware's): each line escapes what it copies."""
    env = {**base_env(unreachable_database_url), "LOG_FORMAT": fmt}
    token = TokenService(make_settings(DATABASE_URL=unreachable_database_url), None).issue(
        uuid.uuid4(), uuid.uuid4()
    )
    with launched(env) as service:
        for i, forged in enumerate(FORGERIES):
            fake = "2026-11-28%2010:00:00,000%20INFO%20service.access%20[-]%20GET%20admin%20200"
            answer = raw_get(
                service.port,
                f"/api/tasks/{forged}{fake}",
                b"Authorization: Bearer "
                + token.encode()
                + b"\r\n"
                + f"X-Request-ID: forge-{i}\r\n".encode()
                + FORGED_HEADER,
            )
            assert b" 503 " in answer.partition(b"\r\n")[0], answer
        assert service.stop() == 0
        output = service.output()
    lines = output.split("\n")[:-1]  # what a log collector splits on
    assert lines
    for line in lines:
        assert line.isprintable(), line
        if fmt == "json":
            assert line.isascii(), line
            json.loads(line)
        else:
            assert TEXT_LINE.match(line), line
    for i in range(len(FORGERIES)):
        mine = [line for line in lines if f"forge-{i}" in line]
        # The warning about the 503 and the access line, once each; the pool's
        # reconnect warning may carry the request id of the request that woke it.
        warning = [line for line in mine if "answered 503" in line]
        access = [line for line in mine if line not in warning and "service.access" in line]
        assert (len(warning), len(access)) == (1, 1), mine


def test_a_json_line_is_ascii_and_reads_back_as_it_was_given():
    # DEL, a C1 control, U+2028, an astral character, a lone surrogate (what
    # an undecodable header byte becomes): orjson writes the first four raw
    # and refuses the last.
    msg = "a\x7fb\x9bc\u2028d\U0001f600e\udcfff"
    line = logs.JsonFormatter().line(logs.Entry(0.0, "INFO", "x", msg, None, {"path": msg}))
    assert line.isascii()
    assert line.isprintable()
    assert json.loads(line)["msg"] == json.loads(line)["path"] == msg
