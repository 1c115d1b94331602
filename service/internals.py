"""The two places the service reaches into a library's private parts, kept
here and nowhere else; tests/test_internals.py fails loudly when a library
upgrade moves them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web, web_protocol

from service.errors import Problem, problem_response

log = logging.getLogger("service.errors")
# service.logs.access_line: (method, path, route, status, ms, request id, client)
AccessLine = Callable[[str, str, str | None, int, float | None, str | None, str], None]


def skip_caller_lookup() -> None:
    """logging walks the stack for every record to find its caller's file and
    line, which no line of ours prints; the logging HOWTO's "Optimization"
    section names this switch."""
    logging._srcfile = None  # type: ignore[attr-defined]


def answer_malformed_http_with_problems(access_line: AccessLine) -> None:
    """Requests too malformed to reach a handler (a bad request line, a
    header over aiohttp's 8190-byte limit) are answered by aiohttp's
    RequestHandler.handle_error, with text that echoes the input. Make those
    problem documents too, each with its access line (no middleware ran).
    Idempotent."""
    if getattr(web_protocol.RequestHandler.handle_error, "_problem", False):
        return

    def handle_error(
        self: Any,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,  # aiohttp's text echoes the input: unused
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("unhandled error outside the handlers", exc_info=exc)
        else:
            log.info("malformed HTTP request answered %d: %s", status, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        detail = (
            "The request is not valid HTTP, or its headers are too large."
            if status < 500
            else "An unexpected error occurred."
        )
        response = problem_response(Problem(detail, status=status), request.path)
        response.force_close()
        # The TCP peer: the headers of a request this malformed are not trusted.
        access_line(request.method, request.path, None, status, None, None, request.remote or "-")
        return response

    handle_error._problem = True  # type: ignore[attr-defined]
    web_protocol.RequestHandler.handle_error = handle_error  # type: ignore[method-assign]
