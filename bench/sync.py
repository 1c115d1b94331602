"""The change feed (GET /api/tasks/changes) under load, beside list 20.

    .venv/bin/python bench/sync.py [--rounds 3] [--seconds 5] [--note TEXT]

One account owning 10,000 tasks, each inserted in a transaction of its
own (as 10,000 creates would be), then ANALYZE. A full sync takes the
account to a finished token; then a handful of its tasks are patched
through the API and a second sync from that token finishes at a newer
one. Scenarios, wrk with 32 connections and the account's token:

- sync, nothing changed: `?since=` the newer token (each answer: no task);
- sync, a few changes: `?since=` the older token, fixed for the run, so
  each answer is the same patched tasks;
- first sync page: `?limit=100`, no token (the 100 oldest changes);
- list 20: `GET /api/tasks?limit=20`, the plain page, for scale.

Each scenario's answer is checked once before the run (the tasks it holds).
The service is one process (`python -m service serve`, as bench/ab.py
starts it) on a database of this run's own; every scenario in turns, the
order reversed each round, for the rounds asked; req/s and CPU a request
of the service process and of all PostgreSQL processes (from /proc, as
bench/ab.py measures them; and of those, the backends connected to this
run's database), medians over the rounds. Prints a table and
writes it to bench/results/sync.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import load
import psycopg
from ab import TICK, cpu_seconds, postgres_cpu_seconds, serving
from service_runner import BENCH_DATABASE_URL, analyze

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "sync.md"
TASKS = 10_000
CHANGED = 5
CONNECTIONS = 32
SYNC_PAGE = 500  # the largest page a sync may ask for

LUA = """
wrk.headers["Authorization"] = "Bearer {token}"
local path = "{path}"
request = function() return wrk.format("GET", path) end
"""

NOTHING_CHANGED = "sync, nothing changed"
FEW_CHANGES = f"sync, a few changes ({CHANGED})"
FIRST_PAGE = "first sync page (limit 100)"
LIST_20 = "list 20"


def call(url: str, method: str, token: str, body: dict | None = None) -> tuple[bytes, dict]:
    """One request with the account's token: (raw body, parsed body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - our local service
        url, data=data, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our local service
        raw = resp.read()
    return raw, json.loads(raw)


def seed(database_url: str, user_id: str) -> None:
    """TASKS tasks, each inserted in a transaction of its own, as load.py's
    seed tasks are (titles, descriptions of 0-49 characters)."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.pipeline():
        for i in range(TASKS):
            conn.execute(
                "INSERT INTO tasks (user_id, title, description) VALUES (%s, %s, %s)",
                (user_id, f"seed {i}", "x" * (i % 50)),
            )
    analyze(database_url)


def full_sync(url: str, token: str, since: str | None = None) -> tuple[str, list[str]]:
    """A sync to its end, pages of SYNC_PAGE: (the finished token, task ids seen)."""
    seen: list[str] = []
    while True:
        query = f"?limit={SYNC_PAGE}" + (f"&since={quote(since)}" if since else "")
        _, page = call(url + "/api/tasks/changes" + query, "GET", token)
        seen += [task["id"] for task in page["tasks"]]
        since = page["next"]
        if not page["more"]:
            return since, seen


def tokens(url: str, token: str, ids: list[str]) -> tuple[str, str]:
    """(a finished sync's token, then CHANGED tasks patched, a token after those).
    A token's floor is the oldest transaction running anywhere on the
    cluster when its sync began: one left open elsewhere (another database's
    tests) holds it back, and the sync from it sends tasks again that were
    changed after that transaction began. Then again, until the sync from
    the first token holds the changed tasks alone and the sync from the
    second none (each answer is the same from then on: nothing writes)."""
    changed = ids[:: len(ids) // CHANGED][:CHANGED]
    for attempt in range(10):
        older, seen = full_sync(url, token)
        if len(seen) != TASKS:
            raise RuntimeError(f"a full sync returned {len(seen)} tasks, not {TASKS}")
        for task_id in changed:
            call(f"{url}/api/tasks/{task_id}", "PATCH", token, {"completed": attempt % 2 == 0})
        newer, since_older = full_sync(url, token, older)
        if sorted(since_older) == sorted(changed):
            for _ in range(10):
                after, since_newer = full_sync(url, token, newer)
                if not since_newer:
                    return older, newer
                newer = after
                time.sleep(1)
        print(f"tokens held back by a transaction elsewhere (try {attempt + 1})", file=sys.stderr)
        time.sleep(2)
    raise RuntimeError("a transaction held open elsewhere keeps every token's floor back")


def paths(older: str, newer: str) -> dict[str, tuple[str, int]]:
    """{scenario: (path, tasks its answer holds)}."""
    return {
        NOTHING_CHANGED: (f"/api/tasks/changes?since={quote(newer)}", 0),
        FEW_CHANGES: (f"/api/tasks/changes?since={quote(older)}", CHANGED),
        FIRST_PAGE: ("/api/tasks/changes?limit=100", 100),
        LIST_20: ("/api/tasks?limit=20", 20),
    }


def answer_sizes(url: str, token: str, scenarios: dict[str, tuple[str, int]]) -> dict[str, int]:
    """Each scenario's answer once, checked: {scenario: its bytes}."""
    sizes = {}
    for name, (path, count) in scenarios.items():
        raw, answer = call(url + path, "GET", token)
        tasks = answer if isinstance(answer, list) else answer["tasks"]
        if len(tasks) != count or (isinstance(answer, dict) and answer["deleted"]):
            raise RuntimeError(f"{name}: {len(tasks)} tasks in the answer, not {count}")
        sizes[name] = len(raw)
    return sizes


def backends_cpu_seconds(database: str) -> float:
    """CPU time of the PostgreSQL backends connected to `database` (their
    process title names it): this run's share of the PostgreSQL processes
    that postgres_cpu_seconds() counts, whatever else runs on the cluster."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if f" {database} ".encode() in title and stat.partition(" (")[2].startswith("postgres)"):
            values = stat.rsplit(")", 1)[1].split()
            total += int(values[11]) + int(values[12])
    return total / TICK


def commit() -> str:
    out = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def report(
    results: dict, sizes: dict[str, int], args: argparse.Namespace, loads: tuple[float, float]
) -> str:
    medians = {
        name: [statistics.median(run[i] for run in runs) for i in range(5)]
        for name, runs in results.items()
    }
    plain = medians[LIST_20][2] + medians[LIST_20][3]
    rows = []
    for name, (rps, p50, cpu, pg, own) in medians.items():
        rows.append(
            f"| {name} | {rps:.0f} | {p50:.2f} | {cpu:.0f} | {pg:.0f} | {own:.0f} "
            f"| {cpu + pg:.0f} | {(cpu + pg) / plain:.2f}x | {sizes[name]:,} |"
        )
    command = f"`.venv/bin/python bench/sync.py --rounds {args.rounds} --seconds {args.seconds}"
    command += f' --note "{args.note}"`' if args.note else "`"
    return "\n".join(
        [
            f"# Sync: the change feed under load ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"{command} at {commit()}: one account owning {TASKS:,} tasks (each inserted "
            f"in a transaction of its own, then ANALYZE); the service one process on a "
            f"database of its own; wrk, {CONNECTIONS} connections, 2 threads, {args.seconds} s "
            f"a scenario, every scenario in turns, the order reversed each round, medians "
            f'of {args.rounds} rounds. "{NOTHING_CHANGED}" asks from a finished sync\'s '
            f'token and gets no task; "{FEW_CHANGES}" from the token before {CHANGED} of '
            f"the account's tasks were patched (once, before the run), so every answer "
            f'holds those {CHANGED}; "{FIRST_PAGE}" has no token (the 100 oldest '
            f'changes, `more` true); "{LIST_20}" is `GET /api/tasks?limit=20`, the plain '
            "page, for scale. CPU a request: the service process's and every PostgreSQL "
            "process's on the machine (from /proc, as bench/ab.py counts it), and of "
            "those the backends connected to this run's database alone (the rest is "
            "PostgreSQL's own processes and whatever else uses the cluster meanwhile).",
            "",
            f"Machine: {os.cpu_count()} cores running the service, PostgreSQL and wrk; load "
            f"average {loads[0]:.1f} before the run, {loads[1]:.1f} at its end."
            + (f" {args.note}" if args.note else ""),
            "",
            "| scenario | req/s | p50 ms | service CPU µs a request "
            "| PostgreSQL CPU µs a request | of which this database's backends "
            "| service + PostgreSQL | that / list 20's | answer bytes |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--note", default="", help="a sentence on the machine, for the file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    # This run's own database: another bench may be running on the machine.
    database = f"todo_sync_{os.getpid()}"
    database_url = f"{BENCH_DATABASE_URL.rsplit('/', 1)[0]}/{database}"
    with ExitStack() as stack:
        keys_url, _ = stack.enter_context(load.better_auth_keys())
        pid, url = stack.enter_context(serving(str(BENCH.parent), database_url, keys_url))
        token, user_id = signup(url)
        seed(database_url, user_id)
        _, ids = full_sync(url, token)
        older, newer = tokens(url, token, ids)
        scenarios = paths(older, newer)
        sizes = answer_sizes(url, token, scenarios)
        results: dict = {name: [] for name in scenarios}
        for turn in range(args.rounds):
            order = list(scenarios) if turn % 2 == 0 else list(reversed(scenarios))
            for name in order:
                script = LUA.format(token=token, path=scenarios[name][0])
                before, pg_before = cpu_seconds(pid), postgres_cpu_seconds()
                own_before = backends_cpu_seconds(database)
                out = load.run_wrk(url, script, args.seconds, CONNECTIONS)
                if out["errors"]:
                    raise RuntimeError(f"{name}: {out['errors']} errors")
                cpu = (cpu_seconds(pid) - before) / out["requests"] * 1e6
                pg = (postgres_cpu_seconds() - pg_before) / out["requests"] * 1e6
                own = (backends_cpu_seconds(database) - own_before) / out["requests"] * 1e6
                results[name].append((out["rps"], out["p50"], cpu, pg, own))
            print(f"round {turn + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    text = report(results, sizes, args, (load_before, os.getloadavg()[0]))
    print(text)
    RESULTS.write_text(text)


def signup(url: str) -> tuple[str, str]:
    """A new account: (its token, its id)."""
    email = f"bench-sync-{os.getpid()}-{time.time_ns()}@example.com"
    session = load.http(
        url + "/api/auth/signup", {"email": email, "password": "bench-password", "name": "Bench"}
    )
    return session["access_token"], session["user"]["id"]


if __name__ == "__main__":
    main()
