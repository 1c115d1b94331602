"""Bearer tokens (the service's own HS256 ones, with no `kid`, and Better
Auth's, see betterauth.py) and the middleware that protects every /api route
but sign-up and sign-in and counts the caller against the per-user limit."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web

from service import keys
from service.auth.betterauth import LEEWAY_SECONDS, BetterAuthVerifier, decode
from service.auth.schemas import EMAIL_MAX, NAME_MAX
from service.errors import AccountGone, Unauthorized
from service.schemas import as_visible_line
from service.settings import Settings

if TYPE_CHECKING:
    from service.db import Database

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "jti"]
# Routes anyone may call under /api.
PUBLIC_ROUTES = frozenset({"/api/auth/signup", "/api/auth/signin"})
MAX_TOKEN_LENGTH = 4096
# Verified tokens remembered (token -> _Verified); cleared when full.
CACHE_SIZE = 10_000
# How long a worker trusts its last look at a token's session: an ended one
# is refused everywhere within this plus a round trip, under the contract's second.
CHECK_SECONDS = 0.5
SIGNED_OUT = "The session has ended (signed out, or the password changed); sign in again."
KEY_WITHDRAWN = "The token is signed with a key the sign-in server no longer publishes."
# Why a token is refused from now on (_Verified.ended): the Problem it raises.
ENDED = functools.partial(Unauthorized, SIGNED_OUT, slug="session-ended", title="Signed out")
GONE = AccountGone
WITHDRAWN = functools.partial(Unauthorized, KEY_WITHDRAWN)
FALLBACK_NAME = "Better Auth user"
MAX_EPOCH = 2**53  # an `iat` past it is clamped: still a bigint, still after every deletion
# What users_email_check takes: no whitespace or NUL, one @ between two parts.
CLAIMED_EMAIL = re.compile(r"[^@\s\x00]+@[^@\s\x00]+")


@dataclass(slots=True)
class _Verified:
    """A token whose signature and claims checked out."""

    user_id: uuid.UUID
    subject: str | None  # the Better Auth user id
    expires: int  # its `exp`
    session: uuid.UUID | None  # its `jti`; None for a Better Auth token
    checked: float = float("-inf")  # monotonic time its session was last seen live
    checking: asyncio.Task[None] | None = None  # the look under way, shared
    ended: Callable[[], Unauthorized] | None = None  # ENDED, GONE or WITHDRAWN: refused for good
    # A Better Auth token's key id, the key set generation it was last seen
    # in, its `iat` and the digest of its signed part (sign-out keys on it).
    kid: str | None = None
    key_set: int = 0
    issued: int = 0
    digest: bytes = b""


class TokenService:
    def __init__(
        self, settings: Settings, db: Database, better_auth: BetterAuthVerifier | None = None
    ) -> None:
        self._key = settings.auth_secret
        self.issuer = settings.jwt_issuer
        self.ttl = settings.jwt_ttl_seconds
        self._db = db
        self.better_auth = better_auth
        self._verified: dict[str, _Verified] = {}

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "iat": now,
            "exp": now + self.ttl,
            "iss": self.issuer,
            "jti": str(session_id),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def cached(self, token: str) -> _Verified | None:
        """A token verified before, unexpired, seen live within CHECK_SECONDS."""
        known = self._verified.get(token)
        if (
            known is not None
            and time.monotonic() - known.checked < CHECK_SECONDS
            and time.time() < known.expires + LEEWAY_SECONDS
            and (known.kid is None or known.key_set == self.better_auth.generation)
        ):
            return known
        return None

    async def authenticate(self, token: str) -> _Verified:
        """Verify a token the cache cannot vouch for and see that it is still
        live; Unauthorized for anything else."""
        known = self._verified.get(token)
        if known is None or time.time() >= known.expires + LEEWAY_SECONDS:
            self._verified.pop(token, None)  # expired: verified again, and refused
            known = await self._verify(token)
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = known
        elif known.ended is None and known.kid is not None:
            # Served from the cache, it skipped verify(): its key must still be published.
            self.better_auth.refresh_if_stale()
            if known.key_set != self.better_auth.generation:
                if self.better_auth.publishes(known.kid):
                    known.key_set = self.better_auth.generation
                else:
                    _end(known, WITHDRAWN)
        if known.ended is None:
            await self._still_live(known)  # ends it when it is not
        if known.ended is not None:
            raise known.ended()
        return known

    async def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The token is not valid.") from None
        if not _header_shape_ok(header):
            raise Unauthorized("The token is not valid.")
        if "kid" not in header:  # ours never carry one
            claims = decode(token, self._key, ALGORITHM, REQUIRED_CLAIMS, issuer=self.issuer)
            try:
                user_id, session = uuid.UUID(str(claims["sub"])), uuid.UUID(str(claims["jti"]))
            except ValueError:
                raise Unauthorized("The token is not valid.") from None
            return _Verified(user_id, None, int(claims["exp"]), session)
        if self.better_auth is None:
            raise Unauthorized("The token is not valid.")
        key_set = self.better_auth.generation  # before: a fetch meanwhile is checked later
        claims = await self.better_auth.verify(token, header)
        issued = min(max(int(claims["iat"]), 0), MAX_EPOCH)
        # What the signature covers: a signature re-encoded (or recomputed, for ECDSA) keeps it.
        digest = hashlib.sha256(token.rpartition(".")[0].encode()).digest()
        email = _claimed_email(claims.get("email"))
        name = _claimed_name(claims.get("name")) or (email or "").partition("@")[0][:NAME_MAX]
        linked = await self._db.one(
            "link_better_auth_user",
            issuer=self.better_auth.issuer,
            subject=claims["sub"],
            email=email,
            name=name or FALLBACK_NAME,
            issued_at=issued,
            token_digest=digest,
        )
        if linked is None:  # the account was deleted after the token was issued
            raise AccountGone()
        # Just found or made: live as of now, unless it was signed out.
        known = _Verified(
            linked["id"],
            claims["sub"],
            int(claims["exp"]),
            None,
            time.monotonic(),
            kid=header["kid"],
            key_set=key_set,
            issued=issued,
            digest=digest,
        )
        if not linked["live"]:
            _end(known, ENDED)
        return known

    async def _still_live(self, known: _Verified) -> None:
        """End the token unless it is live, asked at most once per
        CHECK_SECONDS: requests arriving meanwhile share the look."""
        if time.monotonic() - known.checked < CHECK_SECONDS:
            return
        task = known.checking
        if task is None:
            task = asyncio.get_running_loop().create_task(self._look(known))
            # Its waiters may all have gone: retrieve its exception anyway.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            known.checking = task
        # A request that goes away must not cancel the look for the others.
        await asyncio.shield(task)

    async def _look(self, known: _Verified) -> None:
        started = time.monotonic()
        try:
            if known.session is None:
                live = await self._db.val(
                    "better_auth_token_is_live",
                    id=known.user_id,
                    issued_at=known.issued,
                    token_digest=known.digest,
                )
            else:
                live = await self._db.val(
                    "session_is_live", id=known.session, user_id=known.user_id
                )
        finally:
            known.checking = None
        if known.ended is None:  # else it was ended here while the look ran
            if live:
                known.checked = started  # from when the look began: never later than the truth
            else:
                # No row: the session, or a Better Auth token's account, is gone.
                _end(known, GONE if live is None and known.session is None else ENDED)

    def ended_user(self, user_id: uuid.UUID) -> None:
        """Every session of this account just ended here: refuse its tokens at once."""
        for known in self._verified.values():
            if known.user_id == user_id:
                _end(known, ENDED if known.session is not None else GONE)

    def ended_token(self, token: _Verified) -> None:
        """This token was just signed out here: refuse it, however re-encoded, at
        once. Ours are told apart by session, Better Auth's (no session) by digest."""
        for known in self._verified.values():
            if (known.session, known.digest) == (token.session, token.digest):
                _end(known, ENDED)

    def ended_better_auth_user(self, user_id: uuid.UUID, up_to: int) -> None:
        """The account's Better Auth tokens issued up to second `up_to` were
        just signed out here: refuse them at once."""
        for known in self._verified.values():
            if known.user_id == user_id and known.kid is not None and known.issued <= up_to:
                _end(known, ENDED)


def _header_shape_ok(header: Any) -> bool:
    """Whether the header's members have RFC 7515's types, with no extension
    (`crit`, `b64`): neither kind of token uses one."""
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return False
    if any(name in header and not isinstance(header[name], str) for name in ("kid", "typ", "cty")):
        return False
    return "crit" not in header and header.get("b64", True) is True


def _end(known: _Verified, why: Callable[[], Unauthorized]) -> None:
    """Refused from now on: stale, so cached() passes it to authenticate."""
    known.ended = why
    known.checked = float("-inf")


def _claimed_email(value: Any) -> str | None:
    """The token's email if users_email_check takes it, else None: an odd
    claim must not lock a person out."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if len(value) <= EMAIL_MAX and CLAIMED_EMAIL.fullmatch(value) else None


def _claimed_name(value: Any) -> str:
    """The token's name as sign-up's rule takes it, cut to the column's
    limit; "" when nothing that shows is left."""
    if not isinstance(value, str):
        return ""
    return as_visible_line(as_visible_line(value)[:NAME_MAX])


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("A bearer token is required.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token


def needs_token(route: str) -> bool:
    """Whether the route template needs a bearer token (the OpenAPI document asks too)."""
    return route.startswith("/api/") and route not in PUBLIC_ROUTES


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    match = request.match_info
    if (
        match.http_exception is None  # unknown path or method: let 404/405 speak
        and match.route.resource is not None
        and needs_token(match.route.resource.canonical)
    ):
        tokens = request.app[keys.TOKENS]
        token = bearer_token(request)
        known = tokens.cached(token) or await tokens.authenticate(token)
        request[keys.USER_ID] = known.user_id
        request[keys.TOKEN] = known
        if known.subject is not None:
            request[keys.AUTH_SUBJECT] = known.subject
        await request.app[keys.RATE_LIMITS].count_request(known.user_id, request[keys.CLIENT])
        acting = keys.ACTING_USER.set(known.user_id)
        try:
            return await handler(request)
        finally:
            keys.ACTING_USER.reset(acting)
    return await handler(request)
