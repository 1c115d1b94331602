"""Idempotency-Key (API.md "Retries: Idempotency-Key";
draft-ietf-httpapi-idempotency-key-header) for the task writes that are
not idempotent: a retry with the same key and request gets the first
answer again, kept in PostgreSQL (sql/queries/idempotency/) so that every
worker and replica sees it. A request without the header pays nothing."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from service import errors, keys
from service.errors import problem_from_exception, problem_response
from service.jsonio import read_body

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# 1 to 255 printable ASCII characters, bare or as the draft's quoted string.
_KEY = re.compile(r"[ -~]{1,255}")
# Answers that would be the same again: kept. Everything else (403, 404,
# 409, 412, 429, 5xx) depends on more than the request, so a retry runs again.
KEPT_PROBLEMS = frozenset({400, 413, 415, 422})
# A claim still running after this long was abandoned (its process died):
# the next request with its key takes it over.
ABANDONED_SECONDS = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_key(raw: str) -> str | None:
    """The key in a header's value, bare or quoted; None if it is not one."""
    key = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return key if _KEY.fullmatch(key) else None


def client_key(request: web.Request) -> str | None:
    """The request's key, None without the header; a malformed one is a 400."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = parse_key(raw)
    if key is None:
        raise errors.BadRequest(
            f"{HEADER} must be 1 to 255 printable ASCII characters, bare or in quotes.",
            slug="bad-idempotency-key",
            title="Bad Idempotency-Key",
        )
    return key


def idempotent(handler: Handler) -> Handler:
    """`handler` with Idempotency-Key honoured, checked before anything else
    it does (If-Match included): a retry of a write that succeeded gets its
    answer, not a 412."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        key = client_key(request)
        if key is None:
            return await handler(request)
        user_id = request[keys.USER_ID]
        body = await read_body(request)
        fingerprint = hashlib.sha256(
            b"\0".join((request.method.encode(), request.raw_path.encode(), body))
        ).digest()
        db = request.app[keys.DB]
        ttl = request.app[keys.SETTINGS].idempotency_ttl
        claim = {"user_id": user_id, "client_key": key}
        for _ in range(2):  # a held key may expire between the claim and the read
            if await db.val(
                "claim_idempotency_key",
                **claim,
                request=fingerprint,
                ttl_seconds=ttl,
                abandoned_seconds=ABANDONED_SECONDS,
            ):
                break
            held = await db.one("get_idempotency_key", **claim)
            if held is None:
                continue
            if held["request"] != fingerprint:
                raise errors.Unprocessable(
                    {HEADER: ["This key was sent with another request; use a new key."]}
                )
            if held["status"] is None:
                raise errors.Conflict(
                    "A request with this Idempotency-Key is still being answered; "
                    "retry when it is done."
                )
            return _replay(held)
        try:
            response = await handler(request)
        except Exception as exc:
            problem = problem_from_exception(exc)
            if problem is not None and problem.status in KEPT_PROBLEMS:
                await _keep(db, claim, ttl, problem_response(problem, request.path))
            else:
                await db.exec("release_idempotency_key", **claim)
            raise
        if 200 <= response.status < 300 and isinstance(response, web.Response):
            await _keep(db, claim, ttl, response)
        else:
            await db.exec("release_idempotency_key", **claim)
        return response

    return answer


async def _keep(db, claim: dict, ttl: float, response: web.Response) -> None:
    await db.exec(
        "keep_idempotent_answer",
        **claim,
        status=response.status,
        content_type=response.headers.get("Content-Type"),
        body=response.body,
        etag=response.headers.get("ETag"),
        location_url=response.headers.get("Location"),
        ttl_seconds=ttl,
    )


def _replay(held) -> web.Response:
    headers = {REPLAYED: "true"}
    for name, column in (("Content-Type", "content_type"), ("ETag", "etag")):
        if held[column] is not None:
            headers[name] = held[column]
    if held["location_url"] is not None:
        headers["Location"] = held["location_url"]
    return web.Response(status=held["status"], body=held["body"], headers=headers)
