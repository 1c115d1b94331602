"""PostgreSQL CPU a create costs, for schema changes (a CHECK, an index):
the backend's on-CPU time (/proc/<pid>/schedstat) across runs of
sql/queries/tasks/create_task.sql, one user, no HTTP, no load generator.

    .venv/bin/python bench/statement_cpu.py                      # this tree
    .venv/bin/python bench/statement_cpu.py --before /tmp/before # and a checkout, in turns

Each tree gets its own database, migrated by its own `todo-api migrate`,
and its own copy of the query. Every round empties tasks and vacuums the
task counters first, so no round pays for the dead rows of the last (this
machine's PostgreSQL runs with autovacuum off), then warms up and measures;
trees alternate round by round. Prints each round's microseconds a
statement and writes them to bench/results/statement-cpu.md. The lowest
round is the figure to compare: on this virtual machine a round now and
then reads ~100 us more a statement, time the host took from the vCPU that
the guest still counts as running, and disturbance only ever adds. Whole-service
req/s is bench/load.py's and bench/ab.py's job; this isolates what one
statement costs PostgreSQL, to a microsecond or two, where a latency
benchmark on this machine wanders by ten.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import uuid
from pathlib import Path

import asyncpg
from service_runner import BENCH_DATABASE_URL, REPO, drop_database, todo_api

from service import sqlfiles

RESULTS = Path(__file__).resolve().parent / "results" / "statement-cpu.md"
USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
# Every parameter any tree's create_task has, by name: a task as the create
# scenario of bench/load.py sends it (a title and a description).
VALUES = {
    "user_id": USER_ID,
    "title": "bench task",
    "description": "made by wrk",
    "completed": False,
    "max_tasks": 1_000_000_000,
    "priority": "none",
    "due_at": None,
    "remind_at": None,
    "tags": [],
    "repeat": None,
}


def backend_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class Tree:
    """One checkout: a fresh database its own `todo-api migrate` made, a
    connection, and its create_task statement."""

    def __init__(self, label: str, path: Path, database_url: str) -> None:
        self.label, self.path, self.database_url = label, path, database_url
        self.query = sqlfiles.load(path / "sql" / "queries")["create_task"]
        self.args = [VALUES.get(p.name) for p in self.query.params]  # a newer field: NULL
        self.samples: list[float] = []
        drop_database(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "development"}
        done = todo_api("migrate", env=env, cwd=path)  # creates the database, in development
        if done.returncode != 0:
            raise RuntimeError(f"migrate in {path} failed:\n{done.stderr}")

    async def open(self) -> None:
        # The commit's WAL flush is the disk's time, the same for any
        # statement, and what varies most here: left to the WAL writer.
        self.conn = await asyncpg.connect(
            self.database_url, server_settings={"synchronous_commit": "off"}
        )
        self.pid = await self.conn.fetchval("SELECT pg_backend_pid()")
        await self.conn.execute(
            "INSERT INTO users (id, email, password_hash, name) VALUES ($1, $2, $3, 'Bench')",
            USER_ID,
            "bench@example.com",
            "$2b$12$" + "a" * 53,  # never checked: nobody signs in
        )
        # A tree before migration 0020 counts in stripes: this connection's own.
        # After it, a trigger sets task_totals to 0 at TRUNCATE tasks.
        self.reset = ("VACUUM ANALYZE tasks, task_totals",)
        if await self.conn.fetchval("SELECT to_regclass('task_counts') IS NOT NULL"):
            self.reset = (
                "UPDATE task_counts SET task_total = 0",
                "VACUUM ANALYZE tasks, task_counts",
            )
            await self.conn.execute(
                "INSERT INTO task_counts (user_id, stripe, task_total) VALUES ($1, $2 % 64, 0)",
                USER_ID,
                self.pid,
            )
        self.statement = await self.conn.prepare(self.query.sql)

    async def round(self, runs: int) -> None:
        await self.conn.execute("TRUNCATE tasks")
        for statement in self.reset:
            await self.conn.execute(statement)
        for _ in range(runs // 10):
            await self._run()
        start = backend_ns(self.pid)
        for _ in range(runs):
            await self._run()
        self.samples.append((backend_ns(self.pid) - start) / runs / 1000)

    async def _run(self) -> None:
        if await self.statement.fetchrow(*self.args) is None:
            raise RuntimeError(f"{self.label}: {self.query.name} returned no row")


async def measure(trees: list[Tree], args: argparse.Namespace) -> None:
    try:
        for tree in trees:
            await tree.open()
        for turn in range(args.rounds):
            for tree in trees if turn % 2 == 0 else reversed(trees):
                await tree.round(args.runs)
    finally:
        for tree in trees:
            if hasattr(tree, "conn"):
                await tree.conn.close()


def report(trees: list[Tree], args: argparse.Namespace) -> str:
    lines = [
        "# PostgreSQL CPU a create (create_task)",
        "",
        f"`bench/statement_cpu.py`: {args.rounds} rounds of {args.runs} runs each, one "
        "backend, its on-CPU time from /proc/<pid>/schedstat; trees in turns.",
        "",
        "| tree | commit | lowest µs | median µs | every round, µs |",
        "|---|---|---|---|---|",
    ]
    for tree in trees:
        commit = subprocess.run(
            ["git", "-C", str(tree.path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        lines.append(
            f"| {tree.label} | {commit} | {min(tree.samples):.1f} | "
            f"{statistics.median(tree.samples):.1f} | "
            f"{' '.join(f'{s:.0f}' for s in tree.samples)} |"
        )
    if len(trees) == 2:
        ratio = min(trees[1].samples) / min(trees[0].samples)
        lines += ["", f"after/before, lowest rounds: {ratio * 100:.1f}%"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="a checkout to compare with, e.g. /tmp/before")
    parser.add_argument("--after", help="the checkout with the change (default: this one)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=1500, help="creates a round")
    args = parser.parse_args()
    base = BENCH_DATABASE_URL.rsplit("/", 1)[0]
    paths = {"before": args.before, "after": args.after or REPO} if args.before else {"this": REPO}
    trees = [
        Tree(label, Path(path).resolve(), f"{base}/todo_stmt_{os.getpid()}_{i}")
        for i, (label, path) in enumerate(paths.items())
    ]
    try:
        asyncio.run(measure(trees, args))
    finally:
        for tree in trees:
            drop_database(tree.database_url)
    text = report(trees, args)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
