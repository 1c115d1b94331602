"""JSON in and out: orjson, with the body rules of API.md (415, 400, 413)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from service import keys
from service.errors import (
    BadRequest,
    MalformedJSON,
    RepeatedKey,
    RequestTimeout,
    UnsupportedMediaType,
)

MAX_BODY_BYTES = 64 * 1024


def _default(value: Any) -> Any:
    # asyncpg's UUID is its own fast type, not a uuid.UUID subclass orjson knows.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(data: Any) -> bytes:
    # OPT_UTC_Z: datetimes in UTC render with a Z suffix, per API.md.
    return orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type="application/json"
    )


def has_body(request: web.Request) -> bool:
    return request.body_exists and request.content_length != 0


async def read_json(request: web.Request) -> Any:
    """The request's JSON body. 400 when there is none, it does not parse
    or an object in it repeats a key (API.md), 415 when it is not declared
    as JSON, 413 (from aiohttp) when too large."""
    if not has_body(request):
        raise BadRequest(
            "This request needs a JSON body.", slug="missing-body", title="Missing body"
        )
    content_type = request.content_type
    if content_type != "application/json" and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise UnsupportedMediaType("Send the body as Content-Type: application/json.")
    charset = request.charset
    if charset and charset.lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON bodies must be UTF-8.")
    raw = await read_body(request)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson says what and where (line, column), never more than a
        # character of the input; kept to one line.
        raise MalformedJSON(
            f"The body is not valid JSON: {str(exc).splitlines()[0][:200]}"
        ) from None
    if not _no_repeated_key(raw, data):
        _find_repeated_key(raw)
    return data


def _no_repeated_key(raw: bytes, data: Any) -> bool:
    """True when no object in the body repeats a key; False when one may.
    orjson keeps the last of a repeated key and says nothing. Unless the
    body escapes a quote (\\" or \\u), every quote in it opens or closes a
    key or a string, as in orjson's own rendering of what it kept: a
    dropped key (and what it held) leaves that rendering with fewer quotes."""
    if b"\\" in raw and (b'\\"' in raw or b"\\u" in raw):  # one byte: the fastest search
        return False
    try:
        rendered = orjson.dumps(data)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return False
    return rendered.count(b'"') == raw.count(b'"')


def _find_repeated_key(raw: bytes) -> None:
    """The body again, through the parser that shows every key: a repeated
    key is a 400 naming it."""

    def one_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                # The key as JSON, cut short: the message names it, never echoes a body.
                quoted = json.dumps(key)
                quoted = quoted if len(quoted) <= 60 else quoted[:57] + '..."'
                raise RepeatedKey(f"An object in the body has the key {quoted} twice.")
            data[key] = value
        return data

    try:
        json.loads(raw, object_pairs_hook=one_each)
    except RecursionError:  # orjson reads deeper than this parser
        raise MalformedJSON("The body is nested too deeply.") from None
    except ValueError as exc:  # what orjson took, this parser should too
        raise MalformedJSON(f"The body is not valid JSON: {exc}") from None


async def read_body(request: web.Request) -> bytes:
    """The body, read within CLIENT_BODY_TIMEOUT (408 after): a client
    trickling bytes must not hold a handler. A body already received whole,
    the usual case, is read without a timer."""
    length = request.content_length
    if length is not None and request.content.total_bytes >= length:
        return await request.read()
    try:
        async with asyncio.timeout(request.app[keys.SETTINGS].client_body_timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout("The body did not arrive in time.") from None
