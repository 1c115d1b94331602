"""Before/after on one machine: two checkouts' services, measured in turns.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/ab.py /tmp/before .        # before, after
    .venv/bin/python bench/ab.py /tmp/before . --rounds 6 --only "get one,mix"

Both services run at once, each on a fresh database of its own, and every
scenario of bench/load.py alternates between them (wrk, 32 connections),
so a slow minute of a shared machine hits both. Then it all runs again with
the two swapped between the slots (database, start order), since two
identical services measured this way differ by ~5% by slot alone. Each
ratio is the geometric mean of the two orientations' medians, for req/s and
for the service process's CPU time a request, for all of PostgreSQL's
(from /proc), and for the two together. Prints a table.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import load
from service_runner import (
    BENCH_DATABASE_URL,
    BENCH_LIMITS,
    analyze,
    drop_database,
    free_port,
    wait_until,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process (backends, WAL writer,
    autovacuum): what a request costs the database, while only one
    service is under load."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name, _, fields = stat.partition(" (")[2].partition(") ")
        if name == "postgres":
            values = fields.split()
            total += int(values[11]) + int(values[12])
    return total / TICK


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our local service
            return True
    except OSError:
        return False


@contextmanager
def serving(tree: str, database_url: str, keys_url: str) -> Iterator[tuple[int, str]]:
    """`python -m service serve` from `tree` (its own code), on a fresh
    database; (pid, url)."""
    drop_database(database_url)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": "clNsbY8h43D08AV8JaOjLVkQCPNFOmV5FEtdSv0lM3YpnMGm",
        "BETTER_AUTH_URL": keys_url,
        "BCRYPT_ROUNDS": "10",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        **BENCH_LIMITS,  # the before side ignores the settings it does not know
    }
    command = [sys.executable, "-m", "service"]
    subprocess.run([*command, "migrate"], env=env, cwd=tree, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/health"), "the service to answer /health", 30)
        yield proc.pid, url
    finally:
        proc.terminate()
        proc.wait(30)
        drop_database(database_url)


def orientation(trees: dict[str, str], args: argparse.Namespace) -> dict:
    """{label: {scenario: {"rps": [...], "cpu_us": [...]}}} for one slot order."""
    base = BENCH_DATABASE_URL.rsplit("/", 1)[0]
    results: dict = {}
    with ExitStack() as stack:
        keys_url, ba_token = stack.enter_context(load.better_auth_keys())
        scripts, services = {}, {}
        for slot, (label, tree) in enumerate(trees.items()):
            # This run's own databases: another ab.py may be running on the machine.
            database_url = f"{base}/todo_ab_{os.getpid()}_{slot}"
            pid, url = stack.enter_context(serving(tree, database_url, keys_url))
            services[label] = (pid, url)
            scripts[label] = load.scripts(url, ba_token())
            analyze(database_url)
            results[label] = {
                s: {"rps": [], "cpu_us": [], "pg_us": [], "both_us": []} for s in scripts[label]
            }
        scenarios = [s for s in scripts[label] if not args.only or s in args.only]
        for turn in range(args.rounds):
            order = list(trees) if turn % 2 == 0 else list(reversed(trees))
            for scenario in scenarios:
                for label in order:
                    pid, url = services[label]
                    before, pg_before = cpu_seconds(pid), postgres_cpu_seconds()
                    out = load.run_wrk(url, scripts[label][scenario], args.seconds, 32)
                    cpu = cpu_seconds(pid) - before
                    pg = postgres_cpu_seconds() - pg_before
                    if out["errors"]:
                        raise RuntimeError(f"{label} {scenario}: {out['errors']} errors")
                    results[label][scenario]["rps"].append(out["rps"])
                    results[label][scenario]["cpu_us"].append(cpu / out["requests"] * 1e6)
                    results[label][scenario]["pg_us"].append(pg / out["requests"] * 1e6)
                    results[label][scenario]["both_us"].append((cpu + pg) / out["requests"] * 1e6)
            print(f"round {turn + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", help="the checkout to compare against")
    parser.add_argument("after", help="the checkout with the change")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--only", type=lambda s: s.split(","), help="scenario names, by comma")
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    first = orientation(trees, args)
    second = orientation(dict(reversed(trees.items())), args)
    print(
        "| scenario | before req/s | after req/s | after/before req/s "
        "| service CPU a request | PostgreSQL CPU a request | service + PostgreSQL |"
    )
    print("|---|---|---|---|---|---|---|")
    for scenario in first["after"]:
        if not first["after"][scenario]["rps"]:
            continue
        row = {}
        for metric in ("rps", "cpu_us", "pg_us", "both_us"):
            ratios = [
                statistics.median(run["after"][scenario][metric])
                / statistics.median(run["before"][scenario][metric])
                for run in (first, second)
            ]
            row[metric] = math.sqrt(ratios[0] * ratios[1])
        rps = {
            label: statistics.median(first[label][scenario]["rps"] + second[label][scenario]["rps"])
            for label in trees
        }
        print(
            f"| {scenario} | {rps['before']:.0f} | {rps['after']:.0f} | "
            f"{row['rps'] * 100:.1f}% | {row['cpu_us'] * 100:.1f}% | {row['pg_us'] * 100:.1f}% "
            f"| {row['both_us'] * 100:.1f}% |"
        )


if __name__ == "__main__":
    main()
