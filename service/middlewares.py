"""The request-context middleware: request id, `Vary: Origin`, one access
line, timing."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

from aiohttp import web

from service import metrics
from service.logs import access_log, request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it is of sane length and plain characters.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def _reseed_after_fork() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_reseed_after_fork)


def _vary_origin(headers: Any) -> None:
    """CORS headers depend on the Origin: shared caches must key on it."""
    vary = headers.get("Vary")
    if vary is None:
        headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        headers["Vary"] = vary + ", Origin"


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if _SANE_REQUEST_ID.match(given):
        return given
    # Unique, not secret: a random per-process prefix and a counter; far
    # cheaper than a getrandom() system call per request.
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


@web.middleware
async def request_context_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    rid = _request_id(request)
    token = request_id_var.set(rid)
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = rid
        _vary_origin(response.headers)
        return response
    except web.HTTPException as exc:  # 304 and redirects pass through here
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = rid
        _vary_origin(exc.headers)
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        elapsed = time.perf_counter() - start
        metrics.observe(request.method, route, status, elapsed)
        access_log(rid, request.method, request.path, route, status, round(elapsed * 1000, 2))
        request_id_var.reset(token)
