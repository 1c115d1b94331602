"""service/internals.py reaches into two libraries' private parts. These
tests fail loudly when an upgrade moves them, instead of the service
silently losing what they give."""

from __future__ import annotations

import inspect
import logging

from aiohttp import web_protocol

from service import internals, logs


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
    internals.answer_malformed_http_with_problems(logs.access_line)
    first = web_protocol.RequestHandler.handle_error
    internals.answer_malformed_http_with_problems(logs.access_line)
    assert web_protocol.RequestHandler.handle_error is first
    assert first._problem
