"""The rate limits of API.md "Limits": fixed windows of the `limits` library,
in this process (memory://) or in Redis (redis://, shared by every process).
While Redis is down the per-user limit counts in memory and the auth limits
answer 503, since a lockout counted per process multiplies (docs/limits.md)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
import uuid
from collections.abc import Hashable
from typing import NoReturn

from limits import RateLimitItem
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from service import metrics
from service.clients import address_key, site_key
from service.errors import ServiceBusy, TooManyRequests
from service.logs import first_line
from service.settings import Settings

log = logging.getLogger("service.ratelimit")

# Policy names, as the RateLimit-Policy / RateLimit headers and the logs say them.
SIGNIN_FAILURES = "signin-failures"
AUTH_PER_ADDRESS = "auth-per-address"
AUTH_PER_IPV6_48 = "auth-per-ipv6-48"
PER_USER = "per-user"

# After a storage error Redis is not tried again for this long.
STORAGE_DOWN_SECONDS = 5.0
# A Redis that does not answer within this is treated as down.
REDIS_TIMEOUT_SECONDS = 0.5
_STORAGE_ERRORS = (StorageError, OSError, asyncio.TimeoutError)
# The per-user limit in Redis counts blocks of requests (RateLimits._take_block):
# each a BLOCK_SHARE-th of what the window had left; a refused user is refused
# here until the window ends. Users with a block kept, at most (then those
# used up or past their window are dropped).
BLOCK_SHARE = 16
MAX_BLOCKS = 10_000
# Characters of an account's hash in a log line: enough to follow one account.
LOG_HASH_CHARS = 12


class LocalCounters(Storage):
    """memory://: fixed-window counters in this process. Unlike limits' own
    MemoryStorage (a sweep over every key after each call), it sweeps at most
    once every SWEEP_SECONDS. No await inside: each call is atomic."""

    SWEEP_SECONDS = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._windows: dict[Hashable, list[float]] = {}  # key -> [count, expires at]
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.count(key, expiry, amount)[0]

    def count(self, key: Hashable, expiry: float, amount: int = 1) -> tuple[int, float]:
        """incr() without the limiter around it, for the per-user limit (key:
        a tuple, no string built): the window's count and when it ends."""
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            if now >= self._next_sweep:
                self._sweep(now)
            window = self._windows[key] = [amount, now + expiry]
            return amount, window[1]
        window[0] += amount
        return int(window[0]), window[1]

    async def get(self, key: str) -> int:
        window = self._windows.get(key)
        return int(window[0]) if window is not None and window[1] > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        window = self._windows.get(key)
        return window[1] if window is not None and window[1] > now else now

    async def check(self) -> bool:
        return True

    async def reset(self) -> int:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
        self._next_sweep = now + self.SWEEP_SECONDS


class RateLimits:
    """The four limits, over one storage. `close()` at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.signin_failures = settings.rate_limit_signin_failures
        self.auth_per_address = settings.rate_limit_auth_per_ip
        self.auth_per_site = settings.rate_limit_auth_per_ipv6_48
        self.per_user = settings.rate_limit_per_user
        # Accounts are keyed by an HMAC: neither Redis nor a log holds an
        # address, and without the secret a hash cannot be guessed back.
        self._account_key = hashlib.sha256(
            b"todo-api/ratelimit/account/v2" + settings.auth_secret.encode()
        ).digest()
        self._pool: ConnectionPool | None = None
        storage: Storage
        self._local: LocalCounters | None = None
        if settings.rate_limit_storage == "memory://":
            storage = self._local = LocalCounters()
        else:
            # Our own pool: short timeouts and one immediate retry (redis-py's
            # default backs off for seconds), closed by close().
            self._pool = ConnectionPool.from_url(
                settings.rate_limit_storage,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 1),
            )
            storage = RedisStorage(
                "async+" + settings.rate_limit_storage,
                implementation="redispy",
                key_prefix=settings.rate_limit_key_prefix,
                wrap_exceptions=True,
                connection_pool=self._pool,
            )
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        # The per-user limit in Redis, per user: [admissions left of the block
        # this process took, when its window ends (time.time()), the next
        # block's size]. See _take_block.
        self._blocks: dict[uuid.UUID, list[float]] = {}
        # While Redis is down: the per-user counts of this outage, and when
        # Redis is tried again (time.monotonic()).
        self._fallback: LocalCounters | None = None
        self._retry_storage_at = 0.0

    async def close(self) -> None:
        self._storage_answered(quietly=True)  # this process counts nothing any more
        if self._pool is not None:
            await self._pool.aclose()

    def account(self, user_id: uuid.UUID | None, email_key: str | None = None) -> str:
        """An account's key: an HMAC of its id or, with no password account,
        of the database's normalised email_key, so no spelling has its own."""
        subject = f"user {user_id}" if user_id is not None else f"email {email_key}"
        return hmac.new(self._account_key, subject.encode(), hashlib.sha256).hexdigest()[:32]

    async def count_request(self, user_id: uuid.UUID, client: str) -> None:
        """One authenticated request of `user_id` (the hot path); in memory
        while Redis is down."""
        item = self.per_user
        if item is None:
            return
        # memory:// counts directly: the limiter's coroutines are the hot path's cost.
        counters = self._local
        if counters is None:
            block = self._blocks.get(user_id)
            if block is not None and block[1] > time.time():
                if block[0] >= 1:
                    block[0] -= 1  # taken from Redis already: no round trip
                    return
                if block[0] < 0:  # refused until the window ends: Redis would say so
                    self._raise_429(item, PER_USER, f"user {user_id}", client, block[1])
            ask = self._fallback is None or time.monotonic() >= self._retry_storage_at
            if ask and await self._take_block(item, user_id, client):
                return
            counters = self._fallback
        count, ends = counters.count((PER_USER, user_id), item.get_expiry())
        if count > item.amount:
            self._raise_429(item, PER_USER, f"user {user_id}", client, ends)

    async def count_auth_attempt(self, client: str) -> None:
        """One sign-up or sign-in attempt from `client`, before any other work.
        An IPv6 client counts towards its /48 too, once its own /64 let it
        through: one busy /64 alone never fills its /48."""
        if self.auth_per_address is not None:
            key = address_key(client)
            await self._hit(self.auth_per_address, AUTH_PER_ADDRESS, key, "", client)
        site = site_key(client) if self.auth_per_site is not None else None
        if site is not None:
            await self._hit(self.auth_per_site, AUTH_PER_IPV6_48, site, "", client)

    async def count_signin(self, account: str, client: str) -> None:
        """Count a failure for `account` before its password is checked (no
        bcrypt for a locked account, no overshoot); signed_in() takes it back."""
        if self.signin_failures is not None:
            who = f"account {account[:LOG_HASH_CHARS]}"
            await self._hit(self.signin_failures, SIGNIN_FAILURES, account, who, client)

    async def signed_in(self, account: str) -> None:
        """The right password: the account's failures start over."""
        if self.signin_failures is not None:
            try:
                await self._limiter.clear(self.signin_failures, SIGNIN_FAILURES, account)
            except _STORAGE_ERRORS as exc:  # the sign-in itself succeeded
                self._storage_failed(exc)

    def signin_failed(self, account: str, client: str) -> None:
        short = account[:LOG_HASH_CHARS]
        log.warning(
            "sign-in failed: account %s from %s",
            short,
            client,
            extra={"account": short, "client": client},
        )

    async def _hit(self, item: RateLimitItem, name: str, key: str, who: str, client: str) -> None:
        """Count one hit; 429 past the limit, 503 while the storage is down."""
        busy = "Signing up and in is briefly unavailable; retry shortly."
        wait = self._retry_storage_at - time.monotonic()
        if self._fallback is not None and wait > 0:
            raise ServiceBusy(busy, retry_after=math.ceil(wait))
        if not await self._tally(item, name, key, who, client):
            raise ServiceBusy(busy, retry_after=math.ceil(STORAGE_DOWN_SECONDS))

    async def _take_block(self, item: RateLimitItem, user_id: uuid.UUID, client: str) -> bool:
        """Count a block of requests of `user_id` in Redis at once (one INCRBY)
        and admit this one, 429 if none is left; False if Redis did not answer.
        A block is a BLOCK_SHARE-th of what the window had left at the last
        count, so near the limit it is one request: Redis never counts fewer
        requests than this process admitted, and however many processes
        share it, they admit at most the limit between them."""
        block = self._blocks.get(user_id)
        size = int(block[2]) if block is not None else 1
        key = item.key_for(PER_USER, str(user_id))
        try:
            count = await self._storage.incr(key, item.get_expiry(), amount=size)
            granted = min(size, item.amount - (count - size))  # what fits under the limit
            # The window's end: for the block's rest, or for the 429.
            ends = await self._storage.get_expiry(key) if granted != 1 else 0.0
            self._storage_answered()
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return False
        if len(self._blocks) >= MAX_BLOCKS:  # forgetting a block only refuses early
            now = time.time()
            self._blocks = {u: b for u, b in self._blocks.items() if b[0] != 0 and b[1] > now}
            if len(self._blocks) >= MAX_BLOCKS:
                self._blocks.clear()
        # granted - 1: what is left of the block; -1 once refused, until the window ends.
        left = max(granted - 1, -1)
        self._blocks[user_id] = [left, ends, max(1, (item.amount - count) // BLOCK_SHARE)]
        if granted < 1:
            self._raise_429(item, PER_USER, f"user {user_id}", client, ends)
        return True

    async def _tally(self, item: RateLimitItem, name: str, key: str, who: str, client: str) -> bool:
        """Count one hit in the storage, 429 past the limit; False if it did not answer."""
        try:
            allowed = await self._limiter.hit(item, name, key)
            self._storage_answered()
            if allowed:
                return True
            stats = await self._limiter.get_window_stats(item, name, key)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return False
        self._raise_429(item, name, who, client, stats.reset_time)

    def _raise_429(
        self, item: RateLimitItem, name: str, who: str, client: str, reset_time: float
    ) -> NoReturn:
        """The 429 for `name`; `who` (a user id, an account's short hash, or
        "") and `client` go to the log."""
        seconds = max(1, math.ceil(reset_time - time.time()))
        log.warning(
            "rate limit %s reached: %sfrom %s; retry in %d s",
            name,
            f"{who} " if who else "",
            client,
            seconds,
            extra={"rate_limit": name, "client": client, "retry_after": seconds},
        )
        raise TooManyRequests(
            f"{_DETAILS[name]} (at most {item.amount} per {_period(item)}); "
            f"retry in {seconds} seconds.",
            retry_after=seconds,
            headers={
                "RateLimit-Policy": f'"{name}";q={item.amount};w={item.get_expiry()}',
                "RateLimit": f'"{name}";r=0;t={seconds}',
            },
        )

    def _storage_failed(self, exc: BaseException) -> None:
        """Redis did not answer: not tried again for STORAGE_DOWN_SECONDS; the
        first failure of an outage logs and starts the outage's counters."""
        self._retry_storage_at = time.monotonic() + STORAGE_DOWN_SECONDS
        if self._fallback is None:
            self._fallback = LocalCounters()
            metrics.RATE_LIMIT_FALLBACK.inc()
            metrics.RATE_LIMIT_FALLBACKS.inc()
            log.error(
                "rate-limit storage unreachable (%s: %s); until it answers, the per-user "
                "limit counts in this process and sign-up and sign-in answer 503",
                type(exc).__name__,
                first_line(exc),
            )

    def _storage_answered(self, *, quietly: bool = False) -> None:
        """Redis answered: an outage is over, its memory counts forgotten."""
        if self._fallback is not None:
            self._fallback = None
            metrics.RATE_LIMIT_FALLBACK.dec()
            if not quietly:
                log.warning("rate-limit storage reachable again; counting in it again")


_DETAILS = {
    SIGNIN_FAILURES: "Too many failed sign-ins for this account",
    AUTH_PER_ADDRESS: "Too many sign-up and sign-in attempts from this address",
    AUTH_PER_IPV6_48: "Too many sign-up and sign-in attempts from this network (IPv6 /48)",
    PER_USER: "Too many requests for this account",
}


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
