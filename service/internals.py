"""The places the service reaches into a library's private parts, kept here
and nowhere else; tests/test_internals.py fails loudly when a library
upgrade moves them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web, web_protocol, web_response, web_server

from service.clients import client_address
from service.errors import Problem, problem_response

log = logging.getLogger("service.errors")
# The Server header: aiohttp's default names its version and Python's.
SERVER_NAME = "todo-api"
# service.logs.access_line: (method, path, route, status, ms, request id, client)
AccessLine = Callable[[str, str, str | None, int, float | None, str | None, str], None]
# service.middlewares.answer_headers: (headers, allowed origin or None)
AnswerHeaders = Callable[[Any, str | None], None]


def skip_caller_lookup() -> None:
    """logging walks the stack for every record to find its caller's file and
    line, which no line of ours prints; the logging HOWTO's "Optimization"
    section names this switch."""
    logging._srcfile = None  # type: ignore[attr-defined]


def answer_malformed_http_with_problems(
    access_line: AccessLine, answer_headers: AnswerHeaders
) -> None:
    """Answer requests too malformed to reach a handler (aiohttp's
    handle_error echoes the input) with problem documents too, each with its
    access line and the headers every answer carries. Idempotent."""
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
            detail = "An unexpected error occurred."
        else:
            log.info("malformed HTTP request answered %d: %s", status, type(exc).__name__)
            detail = "The request is not valid HTTP, or its headers are too large."
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        response = problem_response(Problem(detail, status=status), request.path)
        response.force_close()
        # The parser's errors come with no headers: the Origin is read from
        # the refused head's bytes, as _HeadDeadline kept them.
        origin = request.headers.get("Origin") or _origin_in(getattr(self, "bad_head", b""))
        allowed = getattr(self, "allowed_origins", ())
        answer_headers(response.headers, origin if origin in allowed else None)
        # The TCP peer: the headers of a request this malformed are not trusted.
        client = client_address(request.remote, None, ())
        access_line(request.method, request.path, None, status, None, None, client)
        return response

    handle_error._problem = True  # type: ignore[attr-defined]
    web_protocol.RequestHandler.handle_error = handle_error  # type: ignore[method-assign]


_ORIGIN_LINE = re.compile(rb"\r\norigin:[ \t]*([^\r\n]*?)[ \t]*\r\n", re.IGNORECASE)


def _origin_in(head: bytes) -> str | None:
    match = _ORIGIN_LINE.search(head.partition(b"\r\n\r\n")[0] + b"\r\n")
    return match[1].decode("latin-1") if match else None


def name_no_version() -> None:
    """Every response's Server header, ours and aiohttp's own (a 400 for
    malformed HTTP), says SERVER_NAME: web_response reads this module global
    when it prepares the headers, so it costs nothing per request."""
    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


# Of a head that spans reads, what is kept for bad_head: aiohttp refuses a
# line over 8190 bytes, and an Origin comes early.
MAX_HEAD_KEPT = 65536


class _HeadDeadline(web_protocol.RequestHandler):
    """aiohttp's request handler with a deadline for a request's head (a
    client trickling headers otherwise holds the connection), which also
    keeps a refused head's bytes (`bad_head`) so its answer gets CORS headers."""

    __slots__ = ("_head", "_head_timeout", "_head_timer", "allowed_origins", "bad_head")

    def __init__(
        self,
        *args: Any,
        header_timeout: float = 10.0,
        allowed_origins: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = header_timeout
        self._head_timer: Any = None
        self._head = bytearray()  # a head that spans reads, so far
        self.bad_head = b""
        self.allowed_origins = allowed_origins

    def _awaiting_head(self) -> bool:
        return (
            not self._messages
            and not self._request_in_progress
            and (self._waiter is None or not self._waiter.done())
        )

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(self._head_timeout, self._head_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_head():
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            messages = self._messages
            if messages and type(messages[-1][0]) is web_protocol._ErrInfo:
                self.bad_head = bytes(self._head) + data
            self._head.clear()
        else:
            if self._head_timer is None:  # the first byte of the next request
                self._head_timer = self._loop.call_later(self._head_timeout, self._head_late)
            if len(self._head) < MAX_HEAD_KEPT:
                self._head += data

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_late(self) -> None:
        self._head_timer = None
        if self._awaiting_head():
            self.force_close()


def read_request_heads_within_a_deadline() -> None:
    """Make aiohttp's server build _HeadDeadline handlers (web_server looks
    the class up by this module global). Idempotent."""
    web_server.RequestHandler = _HeadDeadline  # type: ignore[attr-defined]


async def settle_cancellation(conn: Any, within: float) -> None:
    """Wait, up to `within` seconds (TimeoutError), until a statement asyncpg
    cancelled (a client-side timeout, a cancelled task) is cancelled on the
    server: asyncpg's Pool did so on release, so the 503 answering it comes
    after the server stopped it. asyncpg has no public call for this."""
    protocol = conn._protocol
    if protocol._is_cancelling():
        await protocol._wait_for_cancellation(within)
