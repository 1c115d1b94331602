"""Issue 27's question for lists: does PostgreSQL building a page's JSON pay?

    .venv/bin/python bench/list_json.py [--rows 2000] [--repeat 200]

On a scratch database migrated like the service's, with `--rows` tasks of
one account (every field set on some), it measures CPU a row, PostgreSQL's
backend's and this process's, over `--repeat` listings of every row: the
service's list_tasks.sql (each task rendered as the API's JSON by
PostgreSQL, then joined), and the listing as it was before issue 27 (the
task rows from list_tasks(), then task_json and orjson here). It checks
first that both give the same bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from service_runner import BENCH_DATABASE_URL, REPO, drop_database

from service.jsonio import dumps
from service.sqlfiles import load as load_queries
from service.tasks.schemas import task_json

TICK = os.sysconf("SC_CLK_TCK")
# The listing before issue 27: list_tasks() (migration 0021) as task rows.
AS_ROWS = """
SELECT listed
FROM list_tasks($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) AS listed
"""
SEED = """
INSERT INTO tasks
    (user_id, title, description, completed, priority, due_at, remind_at, tags, repeat)
SELECT
    $1::uuid, 'task "' || g || E'" \\\\ ünïcødé',
    CASE WHEN g % 2 = 0 THEN E'line\\nnext\\t' || g END,
    g % 5 = 0, (ARRAY['none', 'low', 'medium', 'high'])[g % 4 + 1],
    CASE WHEN g % 3 = 0 THEN timestamptz '2027-01-01 09:00Z' + g * interval '1.5 second' END,
    CASE WHEN g % 6 = 0 THEN timestamptz '2027-01-01 08:00Z' END,
    CASE WHEN g % 4 = 0 THEN ARRAY['work', 'project ' || g % 10] ELSE '{}' END,
    CASE WHEN g % 9 = 0 THEN 'FREQ=WEEKLY' END
FROM generate_series(1, $2::integer) AS g
"""


@contextmanager
def migrated_database(url: str) -> Iterator[None]:
    """A fresh database at `url`, migrated by the service's own command; dropped after."""
    drop_database(url)
    env = {**os.environ, "DATABASE_URL": url, "APP_ENV": "development"}
    command = [sys.executable, "-m", "service", "migrate"]
    subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True)
    try:
        yield
    finally:
        drop_database(url)


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def per_row(
    conn: asyncpg.Connection, query: str, args: tuple, bench: argparse.Namespace, work
) -> tuple[float, float]:
    """CPU µs a row of `query` and `work` done on its rows: PostgreSQL's
    backend's, and this process's (asyncpg decoding the rows, then `work`)."""
    backend = conn.get_server_pid()
    server, client = backend_cpu(backend), time.process_time()
    for _ in range(bench.repeat):
        work(await conn.fetch(query, *args))
    client = time.process_time() - client
    server = backend_cpu(backend) - server
    return server / bench.rows / bench.repeat * 1e6, client / bench.rows / bench.repeat * 1e6


async def main(args: argparse.Namespace) -> None:
    url = BENCH_DATABASE_URL.rsplit("/", 1)[0] + "/todo_bench_list_json"
    as_json = load_queries(REPO / "sql" / "queries")["list_tasks"].sql
    with migrated_database(url):
        conn = await asyncpg.connect(url)
        try:
            user = await conn.fetchval(
                "INSERT INTO users (email, password_hash, name) "
                "VALUES ('json@example.com', '$2b$04$' || repeat('a', 53), 'J') RETURNING id"
            )
            await conn.execute(SEED, user, args.rows)
            await conn.execute("ANALYZE tasks")
            # Both statements' arguments: every task of the account, oldest
            # first, no filter (list_tasks.sql says what each is).
            every = (user, "created_at", *[None] * 9, args.rows, None, None)

            def joined(rows: list) -> bytes:
                return f"[{','.join(r[0] for r in rows)}]".encode()

            def rendered(rows: list) -> bytes:
                return dumps([task_json(r[0]) for r in rows])

            same = joined(await conn.fetch(as_json, *every))
            assert same == rendered(await conn.fetch(AS_ROWS, *every)), "renderings differ"
            before = await per_row(conn, AS_ROWS, every, args, rendered)
            after = await per_row(conn, as_json, every, args, joined)
        finally:
            await conn.close()
    print(f"{args.rows} rows, the same bytes; CPU µs a row over {args.repeat} listings:")
    print("| a listing's rows | PostgreSQL | the service's process |")
    print("|---|---|---|")
    print(f"| task rows, then task_json and orjson | {before[0]:.2f} | {before[1]:.2f} |")
    print(f"| the API's JSON, rendered by PostgreSQL | {after[0]:.2f} | {after[1]:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
