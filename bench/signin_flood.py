"""Does bcrypt stall the event loop? /health latency, idle and while eight
BCRYPT_ROUNDS=12 sign-ins run in parallel, over and over.

    .venv/bin/python bench/signin_flood.py            # starts its own service
    .venv/bin/python bench/signin_flood.py --url URL  # a running one
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from service_runner import arguments, running_service

RESULTS = Path(__file__).resolve().parent / "results" / "signin_flood.md"


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


async def flood(session, url, email, password, parallel, stop: asyncio.Event) -> int:
    done = 0

    async def one_signer() -> None:
        nonlocal done
        while not stop.is_set():
            async with session.post(
                url + "/api/auth/signin", json={"email": email, "password": password}
            ) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
                done += 1

    await asyncio.gather(*(one_signer() for _ in range(parallel)))
    return done


async def measure(url: str, seconds: float, parallel: int) -> dict:
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench password"
    connector = aiohttp.TCPConnector(limit=parallel + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(
            url + "/api/auth/signup", json={"email": email, "password": password, "name": "B"}
        ) as resp:
            assert resp.status == 201, await resp.text()
        idle = await probe_health(session, url, seconds)
        stop = asyncio.Event()
        started = time.perf_counter()
        flood_task = asyncio.create_task(flood(session, url, email, password, parallel, stop))
        await asyncio.sleep(0.5)  # let the flood build up
        loaded = await probe_health(session, url, seconds)
        stop.set()
        signins = await flood_task
        elapsed = time.perf_counter() - started
    return {"idle": idle, "loaded": loaded, "signins": signins, "elapsed": elapsed}


def report(result: dict, parallel: int, rounds: int) -> str:
    rows = []
    for name in ("idle", "loaded"):
        v = result[name]
        rows.append(
            f"| {name} | {len(v)} | {statistics.median(v):.1f} | {pct(v, 95):.1f} "
            f"| {pct(v, 99):.1f} | {max(v):.1f} |"
        )
    rate = result["signins"] / result["elapsed"]
    return "\n".join(
        [
            f"# /health during a sign-in flood ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"{parallel} parallel sign-ins, BCRYPT_ROUNDS={rounds}, one worker, "
            f"{os.cpu_count()} cores shared with PostgreSQL and this client; "
            f"{result['signins']} sign-ins in {result['elapsed']:.1f} s ({rate:.1f}/s).",
            "",
            "| /health | samples | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = arguments(__doc__, seconds=float)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(measure(args.url, args.seconds, args.parallel))
    else:
        with running_service({"BCRYPT_ROUNDS": str(args.rounds)}) as url:
            result = asyncio.run(measure(url, args.seconds, args.parallel))
    text = report(result, args.parallel, args.rounds)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
