"""JWT access tokens (HS256, pinned) and the one middleware that protects
every /api route except sign-up and sign-in."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from aiohttp import web

from service import keys
from service.errors import Unauthorized
from service.settings import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss"]
LEEWAY_SECONDS = 5
# Routes anyone may call under /api.
PUBLIC_ROUTES = frozenset({"/api/auth/signup", "/api/auth/signin"})
MAX_TOKEN_LENGTH = 4096
# Verified tokens are remembered (token -> user id, expiry) so a client's
# every request does not re-run HMAC and JSON decoding; expiry is still
# checked on every use. Bounded: cleared when full.
CACHE_SIZE = 10_000


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.auth_secret
        self.issuer = settings.jwt_issuer
        self.ttl = settings.jwt_ttl_seconds
        self._verified: dict[str, tuple[uuid.UUID, int]] = {}

    def issue(self, user_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "iat": now, "exp": now + self.ttl, "iss": self.issuer}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> uuid.UUID:
        """The user id the token was issued to; Unauthorized for anything
        else (expired, forged, other algorithm, missing claims, junk)."""
        known = self._verified.get(token)
        if known is not None:
            user_id, expires = known
            if time.time() < expires + LEEWAY_SECONDS:
                return user_id
            del self._verified[token]
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
            user_id = uuid.UUID(str(claims["sub"]))
            expires = int(claims["exp"])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired; sign in again.") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized("The token is not valid.") from None
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (user_id, expires)
        return user_id


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthorized("A bearer token is required.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    match = request.match_info
    if (
        match.http_exception is None  # unknown path or method: let 404/405 speak
        and request.method != "OPTIONS"  # CORS preflight carries no credentials
        and request.path.startswith("/api/")
        and match.route.resource is not None
        and match.route.resource.canonical not in PUBLIC_ROUTES
    ):
        request[keys.USER_ID] = request.app[keys.TOKENS].verify(bearer_token(request))
    return await handler(request)
