"""The two outer middlewares: the request context (request id, `Vary:
Origin`, the metrics) and the one that turns every exception into a problem
document, logging and counting the ones that are not the client's doing."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from typing import Any

from aiohttp import web

from service import metrics
from service.errors import (
    DatabaseUnavailable,
    PoolExhausted,
    Problem,
    TooManyInFlight,
    is_timeout,
    problem_from_exception,
    problem_response,
)
from service.logs import access_line, request_id_var

log = logging.getLogger("service.errors")

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
        access_line(request.method, request.path, route, status, round(elapsed * 1000, 2), rid)
        request_id_var.reset(token)


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:
            raise  # redirects and 304 are answers, not errors
        problem = problem_from_exception(exc)
        if problem is None:
            # A bug. The client learns nothing; the log has everything.
            log.exception("unhandled error in %s %s", request.method, request.path)
            problem = Problem(status=500, detail="An unexpected error occurred.")
        elif isinstance(problem, TooManyInFlight):
            metrics.USER_SHARE_REFUSED.inc()
        elif problem.status >= 500:
            if isinstance(problem, DatabaseUnavailable):
                metrics.DB_ERRORS.labels(_db_error_kind(problem, exc)).inc()
            log.warning(
                "%s %s answered %d: %s",
                request.method,
                request.path,
                problem.status,
                type(exc).__name__,
            )
        return problem_response(problem, request.path)


def _db_error_kind(problem: DatabaseUnavailable, exc: BaseException) -> str:
    """The todo_db_errors_total label: a full pool is not an outage."""
    if isinstance(problem, PoolExhausted):
        return "pool_exhausted"
    return "timeout" if is_timeout(exc) else "unavailable"
