"""Better Auth's JWT plugin tokens, verified by PyJWT with the key (JWKS)
its `kid` names. An unknown `kid` refetches the set at most once per
REFETCH_INTERVAL; a key missing while the set cannot be fetched is a 503."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import jwt
import orjson

from service.errors import Problem, Unauthorized
from service.settings import Settings

log = logging.getLogger("service.auth")

# The plugin's `keyPairConfig.alg` choices; keys of others (HS256 above all) are ignored.
ALGORITHMS = frozenset({"EdDSA", "ES256", "ES512", "RS256", "PS256"})
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "aud"]
LEEWAY_SECONDS = 5
FETCH_TIMEOUT_SECONDS = 3.0
REFETCH_INTERVAL = 5.0
MAX_KEY_AGE = 300.0
MAX_JWKS_BYTES = 256 * 1024
SUBJECT_MAX = 255  # users_auth_subject_check
RETRY_AFTER_SECONDS = 5
# Requests with an unknown key id waiting for the next fetch, per process.
MAX_WAITING = 100


class KeysUnavailable(
    Problem,
    status=503,
    slug="auth-keys-unavailable",
    title="Sign-in keys unavailable",
    detail="The sign-in server's public keys cannot be fetched right now; retry shortly.",
    retry_after=RETRY_AFTER_SECONDS,
): ...


class BetterAuthVerifier:
    def __init__(self, settings: Settings) -> None:
        self.jwks_url = settings.better_auth_jwks_url
        # `iss`/`aud` are the plugin's baseURL, taken with or without a trailing slash.
        self.issuer = settings.better_auth_issuer
        self.issuers = [self.issuer, self.issuer + "/"]
        audience = settings.better_auth_audience
        self.audiences = [audience, audience + "/"]
        # Instance attributes, so a test can shorten them.
        self.refetch_interval = REFETCH_INTERVAL
        self.max_key_age = MAX_KEY_AGE
        self.max_waiting = MAX_WAITING
        self.generation = 0  # bumped by every good fetch
        self.waiting = 0  # requests waiting for a fetch
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # monotonic time of the last good fetch
        self._attempted_at = float("-inf")
        self._fetches_begun = 0
        self._fetches_ended = 0  # one at a time: fetch n ends before n + 1 begins
        self._last_fetch_failed = False
        self._refreshing: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def wait_for_refresh(self) -> None:
        """Return once the fetch under way, if any, has ended."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)

    def start(self) -> asyncio.Task[None]:
        """Fetch the keys in the background, unless a fetch is under way."""
        if self._refreshing is None or self._refreshing.done():
            self._attempted_at = time.monotonic()
            self._fetches_begun += 1
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return self._refreshing

    async def close(self) -> None:
        task, self._refreshing = self._refreshing, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def verify(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        """The token's claims, once its signature, algorithm, issuer,
        audience and lifetime check out; Unauthorized otherwise."""
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or alg not in ALGORITHMS:
            raise Unauthorized("The token is not valid.")
        key = await self._key(kid)
        if key.algorithm_name != alg:  # the key decides the algorithm, not the token
            raise Unauthorized("The token is not valid.")
        claims = decode(
            token, key, alg, REQUIRED_CLAIMS, issuer=self.issuers, audience=self.audiences
        )
        subject = claims["sub"]
        if not isinstance(subject, str) or not 1 <= len(subject) <= SUBJECT_MAX:
            raise Unauthorized("The token is not valid.")
        return claims

    def publishes(self, kid: str) -> bool:
        """Whether the key set as last fetched holds this key id."""
        return kid in self._keys

    def refresh_if_stale(self) -> None:
        """Refresh a set older than max_key_age, in the background."""
        now = time.monotonic()
        if (
            now - self._attempted_at >= self.refetch_interval
            and now - self._fetched_at > self.max_key_age
        ):
            self.start()

    async def _key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None:
            self.refresh_if_stale()
            return key
        if self.waiting >= self.max_waiting:
            raise KeysUnavailable()
        self.waiting += 1
        try:
            await self._fetched_since(self._fetches_begun, kid)
        finally:
            self.waiting -= 1
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._last_fetch_failed:
            raise KeysUnavailable()
        raise Unauthorized("The token is signed with a key the sign-in server does not publish.")

    async def _fetched_since(self, begun: int, kid: str) -> None:
        """Return once a fetch begun after the first `begun` has ended (one
        under way may have missed a key published just then), or once `kid`
        is held, or once a fetch failed."""
        while self._fetches_ended <= begun:
            task = self._refreshing
            if task is None or task.done():
                wait = self._attempted_at + self.refetch_interval - time.monotonic()
                if wait > 0 and self._last_fetch_failed:
                    return  # the key server is failing: 503 now, not after the window
                if wait > 0:
                    await asyncio.sleep(wait)  # the next fetch is when the window ends
                    continue
                task = self.start()
            # Shared: a caller that goes away must not cancel it for the others.
            await asyncio.shield(task)
            if kid in self._keys or self._last_fetch_failed:
                return

    async def _refresh(self) -> None:
        try:
            keys = _usable_keys(await self._fetch())
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
            self._last_fetch_failed = True
            log.warning("fetching Better Auth keys from %s failed: %s", self.jwks_url, _why(exc))
        else:
            self._keys = keys
            self.generation += 1
            self._fetched_at = time.monotonic()
            self._last_fetch_failed = False
            log.info("Better Auth keys fetched from %s: %d usable", self.jwks_url, len(keys))
        finally:
            self._fetches_ended += 1

    async def _fetch(self) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS),
                headers={"Accept": "application/json"},
            )
        async with self._session.get(self.jwks_url, allow_redirects=False) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            too_large = ValueError(f"key set larger than {MAX_JWKS_BYTES} bytes")
            if (resp.content_length or 0) > MAX_JWKS_BYTES:
                raise too_large
            body = bytearray()
            async for chunk in resp.content.iter_any():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise too_large
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                raise ValueError("not JSON") from None


def decode(token: str, key: Any, alg: str, required: list[str], **expected: Any) -> dict[str, Any]:
    """The claims of a token of either kind; Unauthorized when they do not check out."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            leeway=LEEWAY_SECONDS,
            options={"require": required},
            **expected,
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired; sign in again.") from None
    except jwt.PyJWTError:
        raise Unauthorized("The token is not valid.") from None


def _usable_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """kid -> key for each signing key of an allowed algorithm; ValueError for no key set."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JSON Web Key Set")
    keys: dict[str, jwt.PyJWK] = {}
    for data in document["keys"]:
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            continue
        if data.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(data)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[data["kid"]] = key
    return keys


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
