"""A flood of sign-ins cannot queue everyone behind bcrypt (API.md, Limits):
the service admits what its threads finish in about a second and answers
the excess 503 at once (a real `todo-api serve` at bcrypt cost 12, so
hashing is slow enough for a queue to form); and the queue is fair between
client addresses (the real PasswordHasher at a low cost, its one thread
held by a gate the test opens, queued through the hasher itself)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from service.auth.passwords import PER_ADDRESS, PasswordHasher, hash_password_sync
from service.errors import ServiceBusy
from tests.conftest import base_env
from tests.helpers import PASSWORD, PROBLEM
from tests.launcher import launched, wait_until_async

FLOOD = 48  # connections; 2 threads at cost 12 finish about 8 hashes a second
LIVENESS = 20  # seconds: only "answered at all", never a timing claim
SIGNIN = "/api/auth/signin"


def samples(text: str) -> dict[str, float]:
    """The metrics page as {sample name with labels: value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            found[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return found


async def test_a_signin_flood_gets_503_at_once_and_never_queues_anyone(migrated_database):
    env = {
        **base_env(migrated_database),
        "BCRYPT_ROUNDS": "12",
        "DB_POOL_MAX": "10",
        # The per-address and per-account rate limits would answer this flood
        # 429 before it reached bcrypt; here the queue itself is under test.
        "RATE_LIMIT_AUTH_PER_IP": "off",
        "RATE_LIMIT_SIGNIN_FAILURES": "off",
    }
    answers: list[tuple[int, str | None, dict]] = []
    stop = asyncio.Event()
    with launched(env) as service:
        url = service.url
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def metrics() -> dict[str, float]:
                async with http.get(url + "/metrics") as resp:
                    return samples(await resp.text())

            async def flooder(i: int) -> None:
                body = {"email": f"nobody{i}@example.com", "password": "wrong horse"}
                while not stop.is_set():
                    async with http.post(url + SIGNIN, json=body) as resp:
                        problem = await resp.json(content_type=PROBLEM)
                        answers.append((resp.status, resp.headers.get("Retry-After"), problem))

            async with http.post(
                url + "/api/auth/signup",
                json={"email": "ann@example.com", "password": PASSWORD, "name": "Ann"},
            ) as resp:
                assert resp.status == 201, await resp.text()
            capacity = (await metrics())["todo_password_hash_capacity"]
            assert capacity >= 2  # at least one hash per thread

            flood = [asyncio.create_task(flooder(i)) for i in range(FLOOD)]
            try:

                async def rejected_and_served() -> bool:
                    statuses = {status for status, _, _ in answers}
                    return {401, 503} <= statuses

                await wait_until_async(rejected_and_served, "no 503 and 401 in the flood", 60)
                # While the flood goes on: the work admitted never exceeds the
                # capacity, /health answers, and a real user is answered.
                for _ in range(5):
                    now = await metrics()
                    assert 0 <= now["todo_password_hashes_in_flight"] <= capacity, now
                async with asyncio.timeout(LIVENESS):
                    async with http.get(url + "/health") as resp:
                        assert resp.status == 200
                    async with http.post(
                        url + SIGNIN, json={"email": "ann@example.com", "password": PASSWORD}
                    ) as resp:
                        assert resp.status in (200, 503), await resp.text()
                        user_busy = resp.status == 503
            finally:
                stop.set()
                await asyncio.gather(*flood)

            after = await metrics()

    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {401, 503}
    # The 503s did not wait for bcrypt: some came before the first hash ended.
    assert statuses.index(503) < statuses.index(401), statuses[:20]
    busy = [(retry, problem) for status, retry, problem in answers if status == 503]
    for retry, problem in busy:
        assert retry is not None
        assert int(retry) >= 1
        assert problem["type"] == "/problems/busy"
        assert problem["instance"] == SIGNIN
        assert "retry" in problem["detail"]
    # An operator sees every one of them.
    rejected = after['todo_password_hash_rejected_total{kind="check"}']
    assert rejected == len(busy) + user_busy
    assert after["todo_password_hashes_in_flight"] == 0


HASHED = hash_password_sync(PASSWORD, 4)
GATE = "198.51.100.9"  # the address whose job holds the thread
FLOODER, NEWCOMER, THIRD = "192.0.2.1", "192.0.2.2", "192.0.2.3"


class Queue:
    """A real PasswordHasher with one thread, held by a gate until
    `release()`: what is queued meanwhile starts, one at a time, in the
    order the hasher picks, recorded in `served`."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.gate = threading.Event()
        self.served: list[str] = []
        self.holder: asyncio.Task | None = None

    async def hold(self) -> None:
        self.holder = asyncio.create_task(self.hasher._run("check", GATE, self.gate.wait, 30))
        await wait_until_async(self.is_held, "the gate's job did not start", 10)

    async def is_held(self) -> bool:
        return self.hasher.running == 1

    def signin(self, label: str, client: str) -> asyncio.Task:
        """A sign-in check from `client`, queued now (its first step runs at
        the next await); `label` goes into `served` when it is answered."""

        async def check() -> bool:
            ok = await self.hasher.check(PASSWORD, HASHED, client)
            self.served.append(label)
            return ok

        return asyncio.create_task(check())

    async def queued(self, *tasks: asyncio.Task) -> list[asyncio.Task]:
        await asyncio.sleep(0)  # each task's first step: admitted, refused or evicting
        return list(tasks)

    async def release(self) -> None:
        self.gate.set()
        if self.holder is not None:
            assert await self.holder is True


@asynccontextmanager
async def one_thread(capacity: int | None = None) -> AsyncIterator[Queue]:
    hasher = PasswordHasher(rounds=4, threads=1)
    await hasher.start()
    if capacity is not None:  # what a second of bcrypt work would admit at a real cost
        hasher.capacity = capacity
    queue = Queue(hasher)
    try:
        await queue.hold()
        yield queue
    finally:
        queue.gate.set()
        hasher.close()


def rejected() -> float:
    return REGISTRY.get_sample_value("todo_password_hash_rejected_total", {"kind": "check"}) or 0


async def busy(task: asyncio.Task) -> ServiceBusy:
    """The 503 the task is answered while the gate still holds the thread:
    the refusal did not wait for bcrypt."""
    await asyncio.wait([task], timeout=LIVENESS)
    assert task.done(), "still waiting"
    error = task.exception()
    assert isinstance(error, ServiceBusy), error
    assert int(error.headers["Retry-After"]) >= 1
    return error


async def test_addresses_take_turns_whoever_queued_first():
    async with one_thread() as queue:
        flood = await queue.queued(*(queue.signin(f"flood{i}", FLOODER) for i in range(3)))
        user = await queue.queued(*(queue.signin(f"user{i}", NEWCOMER) for i in range(2)))
        await queue.release()
        assert await asyncio.gather(*flood, *user) == [True] * 5
    # First come, first served would be flood0, flood1, flood2, user0, user1.
    assert queue.served == ["flood0", "user0", "flood1", "user1", "flood2"]


async def test_an_address_at_its_cap_is_refused_at_once_and_nobody_else():
    # Three addresses in one IPv6 /64 are one address.
    same = [f"2001:db8:0:1::{i}" for i in range(1, PER_ADDRESS + 2)]
    async with one_thread() as queue:
        before = rejected()
        held = await queue.queued(*(queue.signin(f"v6-{i}", same[i]) for i in range(PER_ADDRESS)))
        with pytest.raises(ServiceBusy):
            queue.hasher.refuse_when_full("check", same[-1])
        extra = (await queue.queued(queue.signin("one more", same[-1])))[0]
        await busy(extra)  # answered while the thread is still held: it never waited
        other = await queue.queued(queue.signin("next /64", "2001:db8:0:2::1"))
        assert not other[0].done()
        assert rejected() == before + 2
        await queue.release()
        assert await asyncio.gather(*held, *other) == [True] * (PER_ADDRESS + 1)
    assert "one more" not in queue.served


async def test_a_full_queue_refuses_the_address_holding_most_not_a_newcomer():
    # The gate's job and the flooder's three fill a queue of four.
    async with one_thread(capacity=4) as queue:
        flood = await queue.queued(*(queue.signin(f"flood{i}", FLOODER) for i in range(3)))
        queue.hasher.refuse_when_full("check", NEWCOMER)  # a newcomer is not refused
        user = await queue.queued(queue.signin("user", NEWCOMER))
        # The flooder's newest waiter gave the newcomer its place.
        await busy(flood[2])
        assert not any(task.done() for task in (*user, flood[0], flood[1]))
        # Still full: the flooder, holding most, is refused at once; so is the
        # user's second, since taking one of the flooder's two would only trade places.
        again = await queue.queued(queue.signin("flood again", FLOODER))
        await busy(again[0])
        second = await queue.queued(queue.signin("user again", NEWCOMER))
        await busy(second[0])
        # A third address is a newcomer: the flooder's newest waiter goes.
        third = await queue.queued(queue.signin("third", THIRD))
        await busy(flood[1])
        await queue.release()
        assert await asyncio.gather(flood[0], *user, *third) == [True] * 3
    assert queue.served == ["flood0", "user", "third"]
    assert (queue.hasher.in_flight, queue.hasher.held) == (0, {})


async def test_among_equals_a_newcomer_takes_the_place_of_one_asking_for_more():
    async with one_thread(capacity=3) as queue:
        flood = await queue.queued(queue.signin("flood", FLOODER))
        user = await queue.queued(queue.signin("user", NEWCOMER))
        # Full. The flooder asks for another place and is refused: each holds one.
        more = await queue.queued(queue.signin("flood more", FLOODER))
        await busy(more[0])
        # A third address takes the flooder's place, not the user's, though
        # the user's waiter is the newer.
        third = await queue.queued(queue.signin("third", THIRD))
        await busy(flood[0])
        await queue.release()
        assert await asyncio.gather(*user, *third) == [True, True]
    assert queue.served == ["user", "third"]
    assert (queue.hasher.in_flight, queue.hasher.held, queue.hasher.pressed) == (0, {}, {})


async def test_a_cancelled_waiter_leaves_no_hole():
    async with one_thread() as queue:
        flood = await queue.queued(*(queue.signin(f"flood{i}", FLOODER) for i in range(3)))
        user = await queue.queued(*(queue.signin(f"user{i}", NEWCOMER) for i in range(2)))
        in_flight = queue.hasher.in_flight
        flood[1].cancel()  # the client hung up while waiting: its place is free at once
        with pytest.raises(asyncio.CancelledError):
            await flood[1]
        # A client that hangs up while its hash runs does not free the thread.
        queue.holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queue.holder
        queue.holder = None
        assert (queue.hasher.running, queue.hasher.in_flight) == (1, in_flight - 1)
        # The flooder, at its cap before, queues again.
        more = await queue.queued(queue.signin("flood3", FLOODER))
        assert not more[0].done()
        await queue.release()
        assert await asyncio.gather(flood[0], flood[2], *user, *more) == [True] * 5
    # The turns go on as if it had never queued.
    assert queue.served == ["flood0", "user0", "flood2", "user1", "flood3"]
    assert (queue.hasher.in_flight, queue.hasher.held) == (0, {})
