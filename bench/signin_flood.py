"""Can a flood of sign-ins make anyone wait? BCRYPT_ROUNDS=12, one worker:
a real user's sign-in and /health, idle and while `--parallel` connections
(default 64) send wrong-password sign-ins as fast as they are answered. The
bcrypt queue is bounded (service/auth/passwords.py), so the excess answers
503 with Retry-After at once instead of queueing everyone behind it.

    .venv/bin/python bench/signin_flood.py            # starts its own service
    .venv/bin/python bench/signin_flood.py --url URL  # a running one

With `--addresses N` (issue 25: 40), the fairness scenario instead: N
loopback addresses (127.0.0.10 and up, bound by the client) each send
wrong-password sign-ins at their per-address limit (RATE_LIMIT_AUTH_PER_IP,
its default 30/minute), `--burst` at once every burst/limit minutes,
staggered; meanwhile a user at a fresh address (127.0.0.200) signs in
`--tries` times, one after another. Reported: how many tries got 200 within
TRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from service_runner import arguments, running_service

RESULTS = Path(__file__).resolve().parent / "results" / "signin_flood.md"
PASSWORD = "bench password"  # noqa: S105 - the throwaway bench account
# The rate limits (issue 13) would answer this flood 429 from one address;
# here the bcrypt queue is what is measured.
NO_RATE_LIMITS = {"RATE_LIMIT_AUTH_PER_IP": "off", "RATE_LIMIT_SIGNIN_FAILURES": "off"}
# The fairness scenario runs under the default auth limits (settings.py).
AUTH_PER_ADDRESS_PER_MINUTE = 30
DEFAULT_AUTH_LIMITS = {
    "RATE_LIMIT_AUTH_PER_IP": f"{AUTH_PER_ADDRESS_PER_MINUTE}/minute",
    "RATE_LIMIT_SIGNIN_FAILURES": "10/15minutes",
}
TRY_SECONDS = 15.0  # the bound: a try counts if it is 200 within this
USER_ADDRESS = "127.0.0.200"
MAX_FLOOD_SECONDS = 150.0  # the flood stops by then whatever happens


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def probe_health(session: aiohttp.ClientSession, url: str, seconds: float) -> list[float]:
    """Sequential GET /health for `seconds`; latencies in ms."""
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        async with session.get(url + "/health") as resp:
            await resp.read()
            assert resp.status == 200
        latencies.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.01)
    return latencies


async def probe_signin(
    session: aiohttp.ClientSession, url: str, email: str, seconds: float
) -> list[tuple[int, float]]:
    """The real user's sign-ins, one after another, for `seconds`:
    (status, latency ms)."""
    answers = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        body = {"email": email, "password": PASSWORD}
        async with session.post(url + "/api/auth/signin", json=body) as resp:
            await resp.read()
            assert resp.status in (200, 503), resp.status
        answers.append((resp.status, (time.perf_counter() - start) * 1000))
        await asyncio.sleep(0.05)
    return answers


async def flood(session, url, parallel: int, stop: asyncio.Event) -> Counter[int]:
    """Wrong-password sign-ins on `parallel` connections until `stop`."""
    statuses: Counter[int] = Counter()

    async def one_connection(i: int) -> None:
        body = {"email": f"flood-{i}@example.com", "password": "wrong password"}
        while not stop.is_set():
            async with session.post(url + "/api/auth/signin", json=body) as resp:
                await resp.read()
                statuses[resp.status] += 1

    await asyncio.gather(*(one_connection(i) for i in range(parallel)))
    return statuses


async def capacity(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("todo_password_hash_capacity "):
                return str(int(float(line.split()[1])))
    return "?"


async def sign_up(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """A fresh bench account: its email, and the hashes the service admits at once."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    async with session.post(
        url + "/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "B"}
    ) as resp:
        assert resp.status == 201, await resp.text()
    return email, await capacity(session, url)


def flood_shares(statuses: Counter[int]) -> tuple[int, str]:
    """The flood's answers: how many, and each status's share (0: no answer)."""
    total = sum(statuses.values())
    shares = ", ".join(f"{s or 'none'}: {n} ({n / total:.0%})" for s, n in sorted(statuses.items()))
    return total, shares


async def measure(url: str, seconds: float, parallel: int) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        email, admitted = await sign_up(session, url)
        idle_health = await probe_health(session, url, seconds / 2)
        idle_signin = await probe_signin(session, url, email, seconds / 2)
        stop = asyncio.Event()
        started = time.perf_counter()
        flood_task = asyncio.create_task(flood(session, url, parallel, stop))
        await asyncio.sleep(0.5)  # let the flood build up
        loaded_health, loaded_signin = await asyncio.gather(
            probe_health(session, url, seconds), probe_signin(session, url, email, seconds)
        )
        stop.set()
        statuses = await flood_task
        elapsed = time.perf_counter() - started
    return {
        "capacity": admitted,
        "health": {"idle": idle_health, "flood": loaded_health},
        "signin": {"idle": idle_signin, "flood": loaded_signin},
        "flood": statuses,
        "elapsed": elapsed,
    }


def page(heading: str, *lines: str) -> str:
    """A results page: `heading`, dated now, over `lines`."""
    return "\n".join([f"# {heading} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", "", *lines, ""])


def report(result: dict, parallel: int, rounds: int) -> str:
    health_rows, signin_rows = [], []
    for name in ("idle", "flood"):
        v = result["health"][name]
        health_rows.append(
            f"| {name} | {len(v)} | {statistics.median(v):.1f} | {pct(v, 99):.1f} | {max(v):.1f} |"
        )
        answers = result["signin"][name]
        ms = [m for _, m in answers]
        ok = sum(1 for status, _ in answers if status == 200)
        signin_rows.append(
            f"| {name} | {len(answers)} | {ok / len(answers):.0%} | {statistics.median(ms):.1f} "
            f"| {pct(ms, 99):.1f} | {max(ms):.1f} |"
        )
    total, shares = flood_shares(result["flood"])
    return page(
        "A sign-in flood against the bounded bcrypt queue",
        f"{parallel} connections of wrong-password sign-ins, BCRYPT_ROUNDS={rounds}, "
        f"one worker admitting {result['capacity']} hashes at once "
        f"(todo_password_hash_capacity), {os.cpu_count()} cores shared with PostgreSQL, "
        "this client and other jobs on the machine (load average "
        f"{os.getloadavg()[0]:.1f} at the end). "
        f"The flood got {total} answers in {result['elapsed']:.1f} s: {shares}.",
        "",
        "A real user's sign-in, one after another (200 or an immediate 503):",
        "",
        "| sign-in | samples | answered 200 | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *signin_rows,
        "",
        "| /health | samples | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        *health_rows,
    )


def flood_address(index: int) -> str:
    return f"127.0.0.{10 + index}"


async def address_flood(
    url: str, index: int, addresses: int, burst: int, stop: asyncio.Event, statuses: Counter[int]
) -> None:
    """One address's flood: `burst` wrong-password sign-ins at once, every
    burst/limit minutes (so exactly at its limit), until `stop` or
    MAX_FLOOD_SECONDS; the addresses' bursts are spread over the period."""
    period = burst * 60 / AUTH_PER_ADDRESS_PER_MINUTE
    connector = aiohttp.TCPConnector(limit=0, local_addr=(flood_address(index), 0))
    timeout = aiohttp.ClientTimeout(total=60)
    sent = 0

    async def one() -> None:
        nonlocal sent
        sent += 1
        body = {"email": f"flood-{index}-{sent}@example.com", "password": "wrong password"}
        try:
            async with session.post(url + "/api/auth/signin", json=body) as resp:
                await resp.read()
                statuses[resp.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            statuses[0] += 1  # no answer

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), index * period / addresses)
        pending: set[asyncio.Task] = set()
        while not stop.is_set() and time.perf_counter() - started < MAX_FLOOD_SECONDS:
            pending |= {asyncio.create_task(one()) for _ in range(burst)}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
            pending = {task for task in pending if not task.done()}
        await asyncio.gather(*pending)


async def user_tries(url: str, email: str, tries: int) -> list[tuple[int, float]]:
    """The user's sign-ins from a fresh address, one after another:
    (status, or 0 for no answer within TRY_SECONDS; seconds)."""
    connector = aiohttp.TCPConnector(limit=0, local_addr=(USER_ADDRESS, 0))
    answers = []
    deadline = time.perf_counter() + MAX_FLOOD_SECONDS - 20
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(tries):
            if time.perf_counter() > deadline:  # a try not made is not a 200
                break
            start = time.perf_counter()
            body = {"email": email, "password": PASSWORD}
            try:
                async with asyncio.timeout(TRY_SECONDS):
                    async with session.post(url + "/api/auth/signin", json=body) as resp:
                        await resp.read()
                        status = resp.status
            except TimeoutError:
                status = 0
            answers.append((status, time.perf_counter() - start))
            await asyncio.sleep(0.5)  # a person trying again
    return answers


async def rejected_total(url: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        text = await resp.text()
    return sum(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("todo_password_hash_rejected_total{")
    )


async def measure_addresses(url: str, addresses: int, burst: int, tries: int) -> dict:
    connector = aiohttp.TCPConnector(local_addr=(USER_ADDRESS, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        email, admitted = await sign_up(session, url)
    stop = asyncio.Event()
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    flooders = [
        asyncio.create_task(address_flood(url, i, addresses, burst, stop, statuses))
        for i in range(addresses)
    ]
    # One period, so that every address is flooding before the user comes.
    await asyncio.sleep(burst * 60 / AUTH_PER_ADDRESS_PER_MINUTE)
    answers = await user_tries(url, email, tries)
    stop.set()
    await asyncio.gather(*flooders)
    return {
        "capacity": admitted,
        "answers": answers,
        "flood": statuses,
        "elapsed": time.perf_counter() - started,
        "rejected": await rejected_total(url),
    }


def report_addresses(
    result: dict, addresses: int, burst: int, tries: int, rounds: int, label: str
) -> str:
    answers = result["answers"]
    ok = sum(1 for status, seconds in answers if status == 200 and seconds <= TRY_SECONDS)
    seconds = [s for _, s in answers]
    total, shares = flood_shares(result["flood"])
    return page(
        f"{label}: {addresses} addresses flooding sign-in at their limit",
        f"{addresses} loopback addresses, each {burst} wrong-password sign-ins at once "
        f"every {burst * 60 / AUTH_PER_ADDRESS_PER_MINUTE:g} s "
        f"({AUTH_PER_ADDRESS_PER_MINUTE}/minute, the default per-address limit), staggered; "
        f"BCRYPT_ROUNDS={rounds}, one worker admitting {result['capacity']} hashes at once, "
        f"{os.cpu_count()} cores shared with PostgreSQL, this client and other engineers' "
        f"jobs (load average {os.getloadavg()[0]:.1f} at the end). "
        f"The flood got {total} answers in {result['elapsed']:.0f} s: {shares}; "
        f"todo_password_hash_rejected_total {result['rejected']:g}.",
        "",
        f"A user at a fresh address, {len(answers)} sign-ins one after another: "
        f"**{ok} of {tries} answered 200 within {TRY_SECONDS:g} s** "
        f"(answers: {' '.join(str(status or 'none') for status, _ in answers)}; "
        f"p50 {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s).",
    )


def main() -> None:
    parser = arguments(__doc__, seconds=float)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--addresses", type=int, default=0, help="the fairness scenario")
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--tries", type=int, default=15)
    parser.add_argument("--label", default="This tree")
    parser.add_argument("--output", type=Path, help="where the table goes (default: results/)")
    args = parser.parse_args()
    if args.addresses:
        env = {"BCRYPT_ROUNDS": str(args.rounds), **DEFAULT_AUTH_LIMITS}
        scenario = functools.partial(
            measure_addresses, addresses=args.addresses, burst=args.burst, tries=args.tries
        )
        if args.url:
            result = asyncio.run(scenario(args.url))
        else:
            with running_service(env) as url:
                result = asyncio.run(scenario(url))
        text = report_addresses(
            result, args.addresses, args.burst, args.tries, args.rounds, args.label
        )
        print(text)
        (args.output or RESULTS.with_name("signin_flood_addresses.md")).write_text(text)
        return
    if args.url:
        result = asyncio.run(measure(args.url, args.seconds, args.parallel))
    else:
        env = {"BCRYPT_ROUNDS": str(args.rounds), "DB_POOL_MAX": "20", **NO_RATE_LIMITS}
        with running_service(env) as url:
            result = asyncio.run(measure(url, args.seconds, args.parallel))
    text = report(result, args.parallel, args.rounds)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
