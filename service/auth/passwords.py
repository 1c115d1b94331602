"""bcrypt off the event loop, of base64(HMAC-SHA256(PREHASH_KEY, password)):
44 bytes with no NUL, so no 72-byte truncation. Another scheme would need a
hash-version prefix and a rehash on sign-in."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import bcrypt

from service import metrics
from service.clients import address_key
from service.errors import ServiceBusy

PREHASH_KEY = b"todo-api/password/v1"
# Admit as many hashes as the threads finish in this many seconds; the excess is a 503.
QUEUE_SECONDS = 1.0
# Places one client address may take, running and waiting: a few, for the
# people behind one NAT, and never more than a small share of the queue.
PER_ADDRESS = 3
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
    """Hashes and checks in a thread pool, admitting what drains in about
    QUEUE_SECONDS, shared fairly between client addresses (docs/limits.md,
    "The password queue"). Touched on the event loop only."""

    def __init__(self, rounds: int, threads: int) -> None:
        self.rounds = rounds
        self.threads = threads
        self.executor: ThreadPoolExecutor | None = None
        self.dummy_hash = ""
        self.hash_seconds = 0.0
        self.capacity = threads
        self.in_flight = 0  # places taken: admitted (running or waiting) and not finished
        self.running = 0
        self.held: dict[str, int] = {}  # address key -> places it takes
        self.pressed: dict[str, int] = {}  # address key -> refusals while it held places
        # Addresses with work waiting, in turn order.
        self.waiting: dict[str, deque[_Job]] = {}
        self._arrivals = itertools.count()

    async def start(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="bcrypt")
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        # An unknown email is checked against it, costing what a wrong password does.
        self.dummy_hash = await loop.run_in_executor(
            self.executor, hash_password_sync, "not a real password", self.rounds
        )
        self.hash_seconds = time.perf_counter() - began
        per_second = self.threads * QUEUE_SECONDS / self.hash_seconds
        # At least one waiting place per thread, so a waiter can give a newcomer its place.
        self.capacity = max(2 * self.threads, int(per_second))
        metrics.PASSWORD_HASH_CAPACITY.set(self.capacity)

    def close(self) -> None:
        executor, self.executor = self.executor, None
        for queue in self.waiting.values():  # nothing will start them now
            for job in queue:
                if not job.done.done():
                    job.done.set_exception(ServiceBusy(BUSY, retry_after=self._drain()))
        self.waiting.clear()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    async def hash(self, password: str, client: str) -> str:
        return await self._run("hash", client, hash_password_sync, password, self.rounds)

    async def check(self, password: str, hashed: str | None, client: str) -> bool:
        dummy = hashed or self.dummy_hash
        ok = await self._run("check", client, check_password_sync, password, dummy)
        return ok and hashed is not None

    def refuse_when_full(self, kind: str, client: str) -> None:
        """ServiceBusy now if `client`'s hash would not be admitted. Takes no place."""
        self._make_room(kind, address_key(client), evict=False)

    async def _run(self, kind: str, client: str, fn: Callable[..., Any], *args: Any) -> Any:
        key = address_key(client)
        self._make_room(kind, key, evict=True)
        job = _Job(key, kind, functools.partial(fn, *args), next(self._arrivals))
        self.held[key] = self.held.get(key, 0) + 1
        self.in_flight += 1
        metrics.PASSWORD_HASHES_IN_FLIGHT.inc()
        self.waiting.setdefault(key, deque()).append(job)  # a new address's turn comes last
        self._dispatch()
        try:
            return await job.done
        except asyncio.CancelledError:
            # A waiter that hangs up leaves the queue; a running hash keeps its place.
            if job in self.waiting.get(key, ()):
                self._withdraw(job)
            raise

    def _make_room(self, kind: str, key: str, evict: bool) -> None:
        """Return if `key` may take a place now (with `evict`, after taking
        one from the waiter that can best spare it); else ServiceBusy."""
        held = self.held.get(key, 0)
        if self.executor is not None and held < PER_ADDRESS:
            if self.in_flight < self.capacity:
                return
            victim = self._spare(held)
            if victim is not None:
                if evict:
                    self._withdraw(victim)
                    if not victim.done.done():  # not already cancelled by its caller
                        metrics.PASSWORD_HASH_REJECTED.labels(victim.kind).inc()
                        victim.done.set_exception(ServiceBusy(BUSY, retry_after=self._drain()))
                return
        if held:
            self.pressed[key] = self.pressed.get(key, 0) + 1
        metrics.PASSWORD_HASH_REJECTED.labels(kind).inc()
        raise ServiceBusy(BUSY, retry_after=self._drain())

    def _spare(self, held: int) -> _Job | None:
        """The waiter a full queue drops for an address holding `held` places:
        the newest of the address holding most (then refused most); a queued
        address takes only from one holding two more."""
        newest = [queue[-1] for queue in self.waiting.values()]
        if not newest:
            return None
        victim = max(
            newest,
            key=lambda job: (self.held[job.key], self.pressed.get(job.key, 0), job.arrival),
        )
        return victim if held == 0 or self.held[victim.key] >= held + 2 else None

    def _dispatch(self) -> None:
        """Start waiting work on free threads, one turn per address."""
        loop = asyncio.get_running_loop()
        while self.running < self.threads and self.waiting and self.executor is not None:
            key, queue = next(iter(self.waiting.items()))
            job = queue.popleft()
            del self.waiting[key]
            if queue:  # its next turn comes after every other address's
                self.waiting[key] = queue
            if job.done.done():  # cancelled; its caller has not run yet to withdraw it
                self._let_go(key)
                continue
            future = self.executor.submit(job.call)
            self.running += 1
            # Released when bcrypt is done, not when the caller stops waiting.
            future.add_done_callback(functools.partial(_call_soon, loop, self._finished, job))

    def _finished(self, job: _Job, future: Future[Any]) -> None:
        self.running -= 1
        self._let_go(job.key)
        if not job.done.done():
            if future.cancelled():  # shutdown cancelled it
                job.done.cancel()
            elif future.exception() is not None:
                job.done.set_exception(future.exception())
            else:
                job.done.set_result(future.result())
        self._dispatch()

    def _withdraw(self, job: _Job) -> None:
        """Take a waiting job out of its address's queue, leaving no hole."""
        queue = self.waiting[job.key]
        queue.remove(job)
        if not queue:
            del self.waiting[job.key]
        self._let_go(job.key)

    def _let_go(self, key: str) -> None:
        self.in_flight -= 1
        metrics.PASSWORD_HASHES_IN_FLIGHT.dec()
        if self.held[key] == 1:
            del self.held[key]
            self.pressed.pop(key, None)
        else:
            self.held[key] -= 1

    def _drain(self) -> int:
        """Seconds the admitted work needs to drain, about QUEUE_SECONDS."""
        return math.ceil(self.in_flight * self.hash_seconds / self.threads)


@dataclass(eq=False, slots=True)
class _Job:
    key: str  # the client's address key
    kind: str  # "hash" or "check", the metric's label
    call: Callable[[], Any]
    arrival: int
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    # From a bcrypt thread, or from the loop when shutdown cancels the queue.
    with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to count
        loop.call_soon_threadsafe(callback, *args)
