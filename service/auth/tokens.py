"""Bearer tokens and the one middleware that protects every /api route
except sign-up and sign-in, and counts each caller's requests against the
per-user rate limit once it knows who they are.

Two kinds are accepted: the service's own (HS256 with BETTER_AUTH_SECRET,
no `kid`), and, when BETTER_AUTH_URL is set, the frontend's Better Auth
tokens (a `kid` naming a key its server publishes; see betterauth.py),
whose first use creates the linked account here."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web

from service import keys
from service.auth.schemas import EMAIL_MAX, NAME_MAX
from service.errors import Unauthorized
from service.schemas import as_visible_line
from service.settings import Settings

if TYPE_CHECKING:
    from service.auth.betterauth import BetterAuthVerifier
    from service.db import Database

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss"]
LEEWAY_SECONDS = 5
# Routes anyone may call under /api.
PUBLIC_ROUTES = frozenset({"/api/auth/signup", "/api/auth/signin"})
MAX_TOKEN_LENGTH = 4096
# Verified tokens are remembered (token -> caller, expiry) so a client's
# every request does not re-run signature checks, JSON decoding or the
# account lookup; expiry is still checked on every use. Bounded: cleared
# when full.
CACHE_SIZE = 10_000
FALLBACK_NAME = "Better Auth user"

# (user id here, Better Auth user id or None)
Caller = tuple[uuid.UUID, str | None]


class TokenService:
    def __init__(
        self, settings: Settings, db: Database, better_auth: BetterAuthVerifier | None = None
    ) -> None:
        self._key = settings.auth_secret
        self.issuer = settings.jwt_issuer
        self.ttl = settings.jwt_ttl_seconds
        self._db = db
        self.better_auth = better_auth
        self._verified: dict[str, tuple[Caller, int]] = {}

    def issue(self, user_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl, "iss": self.issuer}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def cached(self, token: str) -> Caller | None:
        """The caller of a token verified before and not yet expired."""
        known = self._verified.get(token)
        if known is None:
            return None
        if time.time() < known[1] + LEEWAY_SECONDS:
            return known[0]
        del self._verified[token]
        return None

    async def authenticate(self, token: str) -> Caller:
        """Verify a token not in the cache; Unauthorized for anything that
        is not a valid token of either kind (expired, forged, another
        algorithm, missing claims, junk)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The token is not valid.") from None
        if "kid" in header:  # ours never carry one
            if self.better_auth is None:
                raise Unauthorized("The token is not valid.")
            claims = await self.better_auth.verify(token, header)
            caller: Caller = (await self._link(self.better_auth.issuer, claims), claims["sub"])
            expires = int(claims["exp"])
        else:
            user_id, expires = self._verify_own(token)
            caller = (user_id, None)
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (caller, expires)
        return caller

    def _verify_own(self, token: str) -> tuple[uuid.UUID, int]:
        """(user id, expiry) of one of our own tokens."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
            return uuid.UUID(str(claims["sub"])), int(claims["exp"])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired; sign in again.") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized("The token is not valid.") from None

    async def _link(self, issuer: str, claims: dict[str, Any]) -> uuid.UUID:
        """The account linked to this Better Auth user, made on first use."""
        email = _claimed_email(claims.get("email"))
        name = _claimed_name(claims.get("name")) or (email or "").partition("@")[0][:NAME_MAX]
        return await self._db.val(
            "link_better_auth_user",
            issuer=issuer,
            subject=claims["sub"],
            email=email,
            name=name or FALLBACK_NAME,
        )


def _claimed_email(value: Any) -> str | None:
    """The token's email if users_email_check would take it, else None:
    an odd claim must not lock a person out."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    local, at, domain = value.partition("@")
    if (
        len(value) > EMAIL_MAX
        or not at
        or not local
        or not domain
        or "@" in domain
        or any(c.isspace() or c == "\x00" for c in value)
    ):
        return None
    return value


def _claimed_name(value: Any) -> str:
    """The token's name under the rule sign-up's name follows (one line that
    shows), cut to the column's limit; "" when nothing that shows is left."""
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
    """Whether the route template answers only with a bearer token: the API's,
    but for sign-up and sign-in. The OpenAPI document asks the same."""
    return route.startswith("/api/") and route not in PUBLIC_ROUTES


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    match = request.match_info
    if (
        match.http_exception is None  # unknown path or method: let 404/405 speak
        and request.method != "OPTIONS"  # CORS preflight carries no credentials
        and match.route.resource is not None
        and needs_token(match.route.resource.canonical)
    ):
        tokens = request.app[keys.TOKENS]
        token = bearer_token(request)
        user_id, subject = tokens.cached(token) or await tokens.authenticate(token)
        request[keys.USER_ID] = user_id
        if subject is not None:
            request[keys.AUTH_SUBJECT] = subject
        await request.app[keys.RATE_LIMITS].count_request(user_id, request[keys.CLIENT])
        acting = keys.ACTING_USER.set(user_id)
        try:
            return await handler(request)
        finally:
            keys.ACTING_USER.reset(acting)
    return await handler(request)
