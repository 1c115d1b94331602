"""Can a flood of sign-ins make anyone wait? BCRYPT_ROUNDS=12, one worker:
a real user's sign-in and /health, idle and while `--parallel` connections
(default 64) send wrong-password sign-ins as fast as they are answered. The
bcrypt queue is bounded (service/auth/passwords.py), so the excess answers
503 with Retry-After at once instead of queueing everyone behind it.

    .venv/bin/python bench/signin_flood.py            # starts its own service
    .venv/bin/python bench/signin_flood.py --url URL  # a running one
"""

from __future__ import annotations

import asyncio
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


async def measure(url: str, seconds: float, parallel: int) -> dict:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(
            url + "/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "B"}
        ) as resp:
            assert resp.status == 201, await resp.text()
        admitted = await capacity(session, url)
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
    statuses = result["flood"]
    total = sum(statuses.values())
    shares = ", ".join(f"{s}: {n} ({n / total:.0%})" for s, n in sorted(statuses.items()))
    return "\n".join(
        [
            f"# A sign-in flood against the bounded bcrypt queue "
            f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
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
            "",
        ]
    )


def main() -> None:
    parser = arguments(__doc__, seconds=float)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
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
