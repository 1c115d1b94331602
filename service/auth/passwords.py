"""bcrypt, without its 72-byte truncation, off the event loop.

bcrypt ignores every byte after the 72nd, so two long passwords sharing a
prefix would both sign in. We never feed it the password itself: it gets
base64(HMAC-SHA256(key=PREHASH_KEY, password)), 44 bytes with no NUL, so
every byte of the password counts and any length works. The fixed HMAC key
only separates this use of SHA-256 from any other; the salt and cost are
bcrypt's. Changing the scheme would need a hash-version prefix and rehash on
sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bcrypt

from service import metrics
from service.errors import ServiceBusy

PREHASH_KEY = b"todo-api/password/v1"
# Admit as many hashes, running and waiting, as the threads finish in this
# many seconds (API.md: "about a second"); the excess is a 503 at once.
QUEUE_SECONDS = 1.0
BUSY = "Too many sign-ins and sign-ups are waiting for password hashing; retry shortly."


def _prehash(password: str) -> bytes:
    digest = hmac.new(PREHASH_KEY, password.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password_sync(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:  # a corrupt stored hash is a failed check, not a crash
        return False


class PasswordHasher:
    """Hashes and checks in a thread pool (bcrypt releases the GIL), so the
    event loop keeps serving while a sign-in burns 200 ms of CPU; and bounds
    the work admitted, so a flood of sign-ins is answered 503 at once instead
    of queueing everyone behind it."""

    def __init__(self, rounds: int, threads: int) -> None:
        self.rounds = rounds
        self.threads = threads
        self.executor: ThreadPoolExecutor | None = None
        self.dummy_hash = ""
        self.hash_seconds = 0.0
        self.capacity = threads
        self.in_flight = 0  # admitted and not finished; touched on the event loop only

    async def start(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="bcrypt")
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        # Checked against when the email is unknown, so that path costs the
        # same bcrypt work as a wrong password; and timed, to size the queue.
        self.dummy_hash = await loop.run_in_executor(
            self.executor, hash_password_sync, "not a real password", self.rounds
        )
        self.hash_seconds = time.perf_counter() - began
        per_second = self.threads * QUEUE_SECONDS / self.hash_seconds
        self.capacity = max(self.threads, int(per_second))
        metrics.PASSWORD_HASH_CAPACITY.set(self.capacity)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    async def hash(self, password: str) -> str:
        return await self._run("hash", hash_password_sync, password, self.rounds)

    async def check(self, password: str, hashed: str | None) -> bool:
        ok = await self._run("check", check_password_sync, password, hashed or self.dummy_hash)
        return ok and hashed is not None

    def refuse_when_full(self, kind: str) -> None:
        """ServiceBusy now if no hash would be admitted. Sign-up and sign-in
        ask first, before their body, estimate or database lookup, so a
        flood's 503s cost next to nothing."""
        if self.executor is None or self.in_flight >= self.capacity:
            metrics.PASSWORD_HASH_REJECTED.labels(kind).inc()
            # The time the admitted work needs to drain, about QUEUE_SECONDS.
            drain = self.in_flight * self.hash_seconds / self.threads
            raise ServiceBusy(BUSY, retry_after=math.ceil(drain))

    async def _run(self, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        self.refuse_when_full(kind)
        loop = asyncio.get_running_loop()
        self.in_flight += 1  # no await since the check: admission is atomic
        metrics.PASSWORD_HASHES_IN_FLIGHT.inc()
        future = self.executor.submit(fn, *args)
        # Released when bcrypt is done, not when the caller stops waiting: a
        # client that hangs up does not free the thread its hash still holds.
        future.add_done_callback(lambda _: _call_soon(loop, self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self.in_flight -= 1
        metrics.PASSWORD_HASHES_IN_FLIGHT.dec()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    # From a bcrypt thread, or from the loop when shutdown cancels the queue.
    with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to count
        loop.call_soon_threadsafe(callback)
