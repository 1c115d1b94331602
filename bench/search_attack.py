"""Issue 25's search attack: can four accounts searching as hard as their
limits allow slow another user's plain listing? Each attacker owns
MAX_TASKS_PER_USER tasks whose descriptions hold every trigram of the
attack's q but never q itself, so the trigram index finds every task and
each is rejected only on its text. One worker, the production defaults
for the limits (RATE_LIMIT_PER_USER 1200/minute, DB_POOL_MAX 20,
DB_MAX_PER_USER 5, SEARCH_* where the tree has them).

First, on the quiet service, what a search costs beside a plain page (one
request at a time): list 20, a typical q, the attack's q. Then the victim's
list 20, one request at a time, quiet and while the four attack, each on
four connections back to back (waiting out a rate limit's Retry-After).

    .venv/bin/python bench/search_attack.py [--seconds 30] [--label after]

It makes and drops its own database, BENCH_DATABASE_URL (use one of your own
on a shared machine). Copy it into an older checkout's bench/ to measure
that one the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
from psycopg import sql
from service_runner import BENCH_DATABASE_URL, analyze, arguments, drop_database, running_service

RESULTS = Path(__file__).resolve().parent / "results"
PASSWORD = "bench password"  # noqa: S105 - the throwaway bench accounts
ATTACK_Q = "abcdefgh"
TYPICAL_Q = "milk"
ATTACKERS = 4
CONNECTIONS_EACH = 4
ATTACK_TASKS = 10_000
VICTIM_TASKS = 200
# The production defaults of the limits this scenario meets (BENCH_LIMITS
# puts them out of reach for load.py).
LIMITS = {
    "RATE_LIMIT_PER_USER": "1200/minute",
    "DB_POOL_MAX": "20",
    "DB_MAX_PER_USER": "5",
    "MAX_TASKS_PER_USER": str(ATTACK_TASKS),
    "BCRYPT_ROUNDS": "10",
}


def covering_text(q: str, length: int = 2000) -> str:
    """Every trigram of q as a word of its own, repeated: never q itself."""
    words = " ".join(q[i : i + 3] for i in range(len(q) - 2)) + " "
    return (words * (length // len(words) + 1))[:length]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fresh_database(url: str) -> None:
    drop_database(url)
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


async def signup(session: aiohttp.ClientSession, url: str, email: str) -> tuple[str, str]:
    body = {"email": email, "password": PASSWORD, "name": "Bench"}
    async with session.post(url + "/api/auth/signup", json=body) as resp:
        assert resp.status == 201, await resp.text()
        answer = await resp.json()
    return answer["user"]["id"], answer["access_token"]


def seed(victim: str, attackers: list[str]) -> None:
    with psycopg.connect(BENCH_DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tasks (user_id, title, description) "
            "SELECT %s, CASE WHEN g %% 20 = 0 THEN 'buy milk ' ELSE 'task ' END || g, "
            "       'details of task ' || g "
            "FROM generate_series(1, %s) AS g",
            (victim, VICTIM_TASKS),
        )
        for attacker in attackers:
            conn.execute(
                "INSERT INTO tasks (user_id, title, description) "
                "SELECT %s, 'task ' || g, %s FROM generate_series(1, %s) AS g",
                (attacker, covering_text(ATTACK_Q), ATTACK_TASKS),
            )
    analyze(BENCH_DATABASE_URL)


async def timed(session, url: str, path: str, token: str) -> tuple[int, float, str]:
    start = time.perf_counter()
    async with session.get(url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.read()
    kind = ""
    if resp.status >= 400 and b'"type"' in body:
        kind = body.split(b'"type":"', 1)[1].split(b'"', 1)[0].decode()
    return resp.status, (time.perf_counter() - start) * 1000, kind


async def sequential(session, url, path, token, count: int) -> list[tuple[int, float, str]]:
    return [await timed(session, url, path, token) for _ in range(count)]


async def victim_listing(session, url, token, seconds: float) -> list[tuple[int, float, str]]:
    """The victim's list 20 ten times a second (within its own rate limit,
    RATE_LIMIT_PER_USER) for `seconds`."""
    answers = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        answers.append(await timed(session, url, "/api/tasks?limit=20", token))
        await asyncio.sleep(0.1)
    return answers


async def attack(session, url, token: str, stop: asyncio.Event, seen: Counter) -> None:
    """One attacker connection: the attack's q back to back until `stop`."""
    while not stop.is_set():
        async with session.get(
            f"{url}/api/tasks?q={ATTACK_Q}&limit=20", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            body = await resp.read()
        kind = (
            resp.status
            if resp.status < 400
            else f"{resp.status} "
            + (
                body.split(b'"type":"/problems/', 1)[1].split(b'"', 1)[0].decode()
                if b'"type":"/problems/' in body
                else "?"
            )
        )
        seen[kind] += 1
        if resp.status == 429 and b"rate-limited" in body:
            wait = min(float(resp.headers.get("Retry-After", "1")), 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)


async def measure(url: str, seconds: float) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        run = uuid.uuid4().hex[:6]
        victim_id, victim = await signup(session, url, f"victim-{run}@example.com")
        attackers = [
            await signup(session, url, f"attacker-{i}-{run}@example.com") for i in range(ATTACKERS)
        ]
        seed(victim_id, [a for a, _ in attackers])
        # Warm the statements and the cache, then what each costs alone.
        for path, token in (
            ("/api/tasks?limit=20", victim),
            (f"/api/tasks?q={TYPICAL_Q}&limit=20", victim),
            (f"/api/tasks?q={ATTACK_Q}&limit=20", attackers[0][1]),
        ):
            await sequential(session, url, path, token, 3)
        costs = {
            "list 20": await sequential(session, url, "/api/tasks?limit=20", victim, 50),
            f"q={TYPICAL_Q} (10 of 200 match)": await sequential(
                session, url, f"/api/tasks?q={TYPICAL_Q}&limit=20", victim, 50
            ),
            f"q={ATTACK_Q} (the attack, 10,000 candidates)": await sequential(
                session, url, f"/api/tasks?q={ATTACK_Q}&limit=20", attackers[0][1], 10
            ),
        }
        quiet = await victim_listing(session, url, victim, seconds / 2)
        stop, seen = asyncio.Event(), Counter()
        attacking = [
            asyncio.create_task(attack(session, url, token, stop, seen))
            for _, token in attackers
            for _ in range(CONNECTIONS_EACH)
        ]
        await asyncio.sleep(1)  # let the attack build up
        loaded = await victim_listing(session, url, victim, seconds)
        stop.set()
        await asyncio.gather(*attacking)
    return {"costs": costs, "quiet": quiet, "attack": loaded, "seen": seen}


def report(result: dict, label: str, seconds: float) -> str:
    cost_rows = []
    plain = statistics.median(ms for _, ms, _ in result["costs"]["list 20"])
    for name, answers in result["costs"].items():
        ms = [m for _, m, _ in answers]
        statuses = Counter(f"{s} {k}".strip() for s, _, k in answers)
        cost_rows.append(
            f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {pct(ms, 95):.1f} "
            f"| {statistics.median(ms) / plain:.1f}x | "
            + ", ".join(f"{k}: {n}" for k, n in sorted(statuses.items()))
            + " |"
        )
    victim_rows = []
    for name in ("quiet", "attack"):
        answers = result[name]
        ms = [m for _, m, _ in answers]
        statuses = Counter(s for s, _, _ in answers)
        victim_rows.append(
            f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {pct(ms, 95):.1f} "
            f"| {max(ms):.1f} | "
            + ", ".join(f"{k}: {n}" for k, n in sorted(statuses.items()))
            + " |"
        )
    quiet95 = pct([m for _, m, _ in result["quiet"]], 95)
    attack95 = pct([m for _, m, _ in result["attack"]], 95)
    seen = result["seen"]
    return "\n".join(
        [
            f"# Search attack, {label} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"One worker, {os.cpu_count()} cores shared with PostgreSQL, this client and other "
            f"engineers' jobs (load average {os.getloadavg()[0]:.1f} at the end).",
            "",
            "What one request costs on the quiet service, one at a time:",
            "",
            "| request | samples | p50 ms | p95 ms | p50 / list 20 | answers |",
            "|---|---|---|---|---|---|",
            *cost_rows,
            "",
            f"The victim's list 20, quiet and while {ATTACKERS} accounts search "
            f"({CONNECTIONS_EACH} connections each, back to back, {seconds:.0f} s):",
            "",
            "| victim | samples | p50 ms | p95 ms | max ms | statuses |",
            "|---|---|---|---|---|---|",
            *victim_rows,
            "",
            f"Under attack the victim's p95 is {attack95 / quiet95:.1f}x its quiet p95. "
            "The attackers' answers: "
            + ", ".join(f"{k}: {n}" for k, n in sorted(seen.items(), key=str))
            + ".",
            "",
        ]
    )


def main() -> None:
    parser = arguments(__doc__, seconds=float)
    parser.set_defaults(seconds=30.0)
    parser.add_argument("--label", default="this tree")
    args = parser.parse_args()
    fresh_database(BENCH_DATABASE_URL)
    try:
        with running_service(LIMITS) as url:
            result = asyncio.run(measure(url, args.seconds))
    finally:
        drop_database(BENCH_DATABASE_URL)
    text = report(result, args.label, args.seconds)
    print(text)
    slug = "".join(c if c.isalnum() else "-" for c in args.label.lower())
    (RESULTS / f"search_attack-{slug}.md").write_text(text)


if __name__ == "__main__":
    main()
