"""The outer middleware: the request context (request id, client address,
the headers every answer carries, CORS, the metrics, the access line), in
which every exception becomes a problem document, the ones that are not the
client's doing logged and counted."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from typing import Any

from aiohttp import web

from service import keys, metrics
from service.clients import client_address
from service.errors import (
    BadRequest,
    DatabaseUnavailable,
    Problem,
    ServiceBusy,
    db_error_kind,
    problem_from_exception,
    problem_response,
)
from service.logs import access_line, request_id_var

log = logging.getLogger("service.errors")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it is of sane length and plain characters.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Host: a DNS-style name (underscores too: compose service names have them),
# IPv4 or a bracketed IPv6, and an optional port; linear to match. Anything
# else could reach yarl (a 500) or the listing's Link.
_HOST = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?")
_MAX_HOST = 262  # a 253-character name, ':' and a port, or brackets
# Hosts already found valid: a service answers to a handful, so nearly
# every request skips the regex. Bounded, so junk hosts cannot grow it.
_GOOD_HOSTS: set[str] = set()
MAX_GOOD_HOSTS = 64
# Headers that carry lists (If-Match, If-None-Match), refused over this
# before they are parsed (API.md, "Limits").
MAX_LIST_HEADER = 1024
_LIST_HEADERS = ("If-Match", "If-None-Match")

# Readable by the frontend's JavaScript on a cross-origin answer (API.md).
EXPOSED_HEADERS = (
    "ETag, Location, Link, X-Request-ID, Retry-After, WWW-Authenticate, "
    "Idempotent-Replayed, RateLimit, RateLimit-Policy"
)
PREFLIGHT_MAX_AGE = "600"


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


def _reseed_after_fork() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_reseed_after_fork)


def answer_headers(headers: Any, origin: str | None) -> None:
    """What every answer carries, aiohttp's own 400s included: `Vary: Origin`
    (shared caches must key on it), nosniff, `Cache-Control: no-store` unless
    the handler chose one, and for an allowed `origin` the CORS headers."""
    vary = headers.get("Vary")
    if vary is None:
        headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        headers["Vary"] = vary + ", Origin"
    headers["X-Content-Type-Options"] = "nosniff"
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


def _preflight(request: web.Request) -> web.Response:
    """A CORS preflight from an allowed origin, for any path and method: the
    browser then sends the request and shows its real answer (a 404, a 405
    with Allow) instead of a CORS error."""
    headers = {
        "Access-Control-Allow-Methods": request.headers["Access-Control-Request-Method"],
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }
    asked = request.headers.get("Access-Control-Request-Headers")
    if asked:
        headers["Access-Control-Allow-Headers"] = asked
    return web.Response(headers=headers)


@web.middleware
async def request_context_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The request id, the client, CORS and the headers every answer carries,
    every exception as a problem document (problem_answer), the metrics and
    the access line: one middleware, since each layer costs every request."""
    rid = request.headers.get(REQUEST_ID_HEADER)
    if rid is None or not _SANE_REQUEST_ID.match(rid):
        # Unique, not secret: a random per-process prefix and a counter; far
        # cheaper than a getrandom() system call per request.
        rid = f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
    token = request_id_var.set(rid)
    start = time.perf_counter()
    settings = request.app[keys.SETTINGS]
    trusted = settings.trusted_proxies
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ())) if trusted else None
    client = request[keys.CLIENT] = client_address(request.remote, forwarded, trusted)
    origin = request.headers.get("Origin")
    if origin is not None and origin not in settings.frontend_urls:
        origin = None
    response: web.StreamResponse | None = None
    status = 500
    try:
        if (
            origin is not None
            and request.method == "OPTIONS"
            and "Access-Control-Request-Method" in request.headers
        ):
            response = _preflight(request)
        else:
            try:
                refuse_bad_head(request)
                response = await handler(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, web.HTTPException) and exc.status < 400:
                    raise  # redirects and 304 are answers, not errors
                response = problem_answer(request, exc)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = rid
        answer_headers(response.headers, origin)
        return response
    except web.HTTPException as exc:  # 304 and redirects pass through here
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = rid
        answer_headers(exc.headers, origin)
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        elapsed = time.perf_counter() - start
        metrics.observe(request.method, route, status, elapsed)
        user_id = request.get(keys.USER_ID)
        ms = round(elapsed * 1000, 2)
        access_line(request.method, request.path, route, status, ms, rid, client, user_id)
        request_id_var.reset(token)


def refuse_bad_head(request: web.Request) -> None:
    """400, before any other work, for a malformed Host, an absolute-form
    target (RFC 9112 3.2.2: aiohttp takes the URL's authority from it) naming
    another host than Host or PUBLIC_URL, and a list header over MAX_LIST_HEADER."""
    host = request.headers.get("Host")
    if host is not None and host not in _GOOD_HOSTS:
        match = _HOST.fullmatch(host) if len(host) <= _MAX_HOST else None
        if match is None or (match[1] is not None and int(match[1]) > 65535):
            raise BadRequest(
                "The Host header is not a valid host.", slug="bad-host", title="Bad Host"
            )
        if len(_GOOD_HOSTS) < MAX_GOOD_HOSTS:
            _GOOD_HOSTS.add(host)
    if request.raw_path[:1] != "/":
        public = request.app[keys.SETTINGS].public_url
        allowed = {(host or "").lower()}
        if public:
            allowed.add(public.partition("://")[2].partition("/")[0].lower())
        if request.url.raw_authority.lower() not in allowed:
            raise BadRequest(
                "The request target names another host than the Host header.",
                slug="bad-target",
                title="Bad request target",
            )
    for name in _LIST_HEADERS:
        value = request.headers.get(name)
        if value is not None and len(value) > MAX_LIST_HEADER:
            raise BadRequest(f"{name} is over {MAX_LIST_HEADER} bytes.", slug="header-too-large")


def public_url(request: web.Request, rel_url: Any) -> str:
    """An absolute URL of this service for `rel_url`: from PUBLIC_URL when set
    (a proxy may rewrite Host or end TLS), else the request's scheme and Host
    header (which refuse_bad_head vouched for), never an absolute-form target."""
    public = request.app[keys.SETTINGS].public_url
    if public:
        return public + str(rel_url)
    host = request.headers.get("Host") or request.host
    return f"{request.scheme}://{host}{rel_url}"


def problem_answer(request: web.Request, exc: Exception) -> web.Response:
    """The problem document for an exception a handler raised; a bug (no
    known problem) is logged in full and answers a bare 500."""
    problem = problem_from_exception(exc)
    if problem is None:
        # A bug. The client learns nothing; the log has everything.
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
        problem = Problem(status=500, detail="An unexpected error occurred.")
    elif problem.status >= 500 and not isinstance(problem, ServiceBusy):
        # Shed load (ServiceBusy) has its own metric; a line each would
        # cost more than the answer.
        if isinstance(problem, DatabaseUnavailable):
            metrics.DB_ERRORS.labels(db_error_kind(problem, exc)).inc()
        log.warning(
            "%s %s answered %d: %s",
            request.method,
            request.path,
            problem.status,
            type(exc).__name__,
        )
    return problem_response(problem, request.path)


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """problem_answer alone, for an app without request_context_middleware
    (the metrics listener's)."""
    try:
        refuse_bad_head(request)
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:
            raise
        return problem_answer(request, exc)
