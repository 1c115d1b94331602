"""service/internals.py reaches into libraries' private parts. These
tests fail loudly when an upgrade moves them, instead of the service
silently losing what they give."""

from __future__ import annotations

import asyncio
import inspect
import logging

from aiohttp import web_protocol, web_response, web_server

from service import internals, logs, middlewares


def test_logging_still_has_the_caller_lookup_switch():
    assert hasattr(logging, "_srcfile")
    internals.skip_caller_lookup()
    assert logging._srcfile is None
    record = logging.getLogger("x").makeRecord(
        "x", logging.INFO, "(unknown file)", 0, "m", (), None
    )
    assert record.getMessage() == "m"


def test_aiohttp_still_answers_malformed_requests_through_handle_error():
    handle_error = web_protocol.RequestHandler.__dict__["handle_error"]
    params = list(inspect.signature(handle_error).parameters)
    assert params == ["self", "request", "status", "exc", "message"]
    # The parser's errors reach it through this (private) factory.
    source = inspect.getsource(web_protocol.RequestHandler._make_error_handler)
    assert "self.handle_error(" in source


def test_the_patch_is_installed_once():
    internals.answer_malformed_http_with_problems(logs.access_line, middlewares.answer_headers)
    first = web_protocol.RequestHandler.handle_error
    internals.answer_malformed_http_with_problems(logs.access_line, middlewares.answer_headers)
    assert web_protocol.RequestHandler.handle_error is first
    assert first._problem


def test_aiohttp_still_names_itself_through_the_module_global():
    source = inspect.getsource(web_response.StreamResponse._prepare_headers)
    assert "SERVER_SOFTWARE" in source
    internals.name_no_version()
    assert web_response.SERVER_SOFTWARE == internals.SERVER_NAME


async def test_no_response_names_a_version(client):
    answers = [await client.get("/health"), await client.get("/nope")]
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"GET /\x01 HTTP/1.1\r\n\r\n")  # malformed: aiohttp's own 400
    raw = await reader.read()
    writer.close()
    assert b" 400 " in raw.partition(b"\r\n")[0]
    for resp in answers:
        assert resp.headers["Server"] == "todo-api"
    assert b"\r\nServer: todo-api\r\n" in raw


def test_aiohttp_still_builds_handlers_from_the_module_global_with_that_state():
    # web_server.Server makes each connection's handler by this name ...
    assert "RequestHandler(self" in inspect.getsource(web_server.Server.__call__)
    internals.read_request_heads_within_a_deadline()
    assert web_server.RequestHandler is internals._HeadDeadline
    # ... and _HeadDeadline reads this state of it.
    slots = web_protocol.RequestHandler.__slots__
    assert {"_messages", "_request_in_progress", "_waiter"} <= set(slots)
    assert callable(web_protocol.RequestHandler.force_close)
    # A parser error is queued as an _ErrInfo (bad_head is kept for it).
    assert "_ErrInfo(status=400" in inspect.getsource(web_protocol.RequestHandler.data_received)


def test_asyncpg_still_has_the_cancellation_hooks_its_pool_used():
    from asyncpg.protocol.protocol import Protocol

    assert callable(Protocol._is_cancelling)
    assert callable(Protocol._wait_for_cancellation)
