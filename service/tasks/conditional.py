"""ETags and If-Match / If-None-Match (RFC 9110 section 13). A task's ETag is its
version, which the database bumps on every change and the statements compare."""

from __future__ import annotations

import re

from aiohttp import web

_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')
# A version is a PostgreSQL integer: ASCII digits, 1 to 2**31 - 1.
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_MAX_VERSION = 2**31 - 1


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque) pairs, or None for `*`; junk yields no tags. Linear: each
    comma-separated member is matched once (refuse_bad_head bounds the header)."""
    if header.strip() == "*":
        return None
    members = (_ENTITY_TAG.fullmatch(member.strip()) for member in header.split(","))
    return [(bool(m[1]), m[2]) for m in members if m]


def if_match_versions(request: web.Request) -> list[int] | None:
    """The versions If-Match accepts (strong comparison), None for absent or `*`;
    an unparseable header matches nothing, so the write is refused, not blind."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = _tags(header)
    if tags is None:
        return None
    versions = [int(opaque) for weak, opaque in tags if not weak and _VERSION.fullmatch(opaque)]
    return [v for v in versions if v <= _MAX_VERSION][:32]


def none_match(request: web.Request, version: int) -> bool:
    """True when If-None-Match names the current version (weak comparison)
    or is `*`: the GET answers 304."""
    header = request.headers.get("If-None-Match")
    if header is None:
        return False
    tags = _tags(header)
    return tags is None or any(opaque == str(version) for _, opaque in tags)
