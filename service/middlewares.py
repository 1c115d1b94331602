"""The request-context middleware: request id, one access line, timing."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web

from service import metrics
from service.logs import request_id_var

access_log = logging.getLogger("service.access")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it is of sane length and plain characters.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if _SANE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


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
        return response
    except web.HTTPException as exc:  # 304 and redirects pass through here
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        elapsed = time.perf_counter() - start
        metrics.observe(request.method, route, status, elapsed)
        duration_ms = round(elapsed * 1000, 2)
        access_log.info(
            "%s %s %d %.2fms",
            request.method,
            request.path,
            status,
            duration_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
            },
        )
        request_id_var.reset(token)
