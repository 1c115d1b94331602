"""What the benchmarks start: `todo-api serve` on its own migrated database
(through tests/launcher.py, the launcher the tests and fuzz/ use too), and
Debian's PgBouncer in front of PostgreSQL; and the arguments every bench
script takes."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
# Run as `python bench/<script>.py`: only bench/ is on the path, not the repo.
sys.path.insert(0, str(REPO))

from tests.launcher import (  # noqa: E402
    UNREACHED_RATE_LIMITS,
    free_port,
    launched,
    todo_api,
    wait_until,
)

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/todo_bench"
)
# Issue 13's database limits, on but set where the bench does not reach them:
# its one user creates tens of thousands of tasks on wrk's 32 connections, so
# it may own 10^9 tasks and hold a pool as large as its connections.
# Every limit on, as in production, but out of the benchmark's reach: wrk's
# 32 connections are one user, so the pool and that user's share are 32.
BENCH_LIMITS = {
    **UNREACHED_RATE_LIMITS,
    "DB_POOL_MAX": "32",
    "DB_MAX_PER_USER": "32",
    "MAX_TASKS_PER_USER": "1000000000",
}


def arguments(description: str | None, seconds: type = int) -> argparse.ArgumentParser:
    """The options every bench script has: --url and --seconds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--seconds", type=seconds, default=seconds(10))
    return parser


def analyze(database_url: str = BENCH_DATABASE_URL) -> None:
    """ANALYZE the seeded database, as autovacuum would soon after in any
    deployment: this machine's PostgreSQL runs with autovacuum off, and
    without statistics the planner takes the user's 1,000 tasks for a
    handful and may read them all and sort, instead of one page in order."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def drop_database(url: str) -> None:
    """Drop the database the URL names, connections and all (a bench's own)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@contextmanager
def running_service(
    extra_env: dict[str, str] | None = None, workers: int = 1, log_path: str | None = None
) -> Iterator[str]:
    """Migrate the bench database, serve it until the block ends; yields the URL."""
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": BENCH_DATABASE_URL,
        "BETTER_AUTH_SECRET": "clNsbY8h43D08AV8JaOjLVkQCPNFOmV5FEtdSv0lM3YpnMGm",
        "LOG_LEVEL": "WARNING",
        **BENCH_LIMITS,
        **(extra_env or {}),
    }
    migrated = todo_api("migrate", env=env)
    if migrated.returncode != 0:
        raise RuntimeError(f"todo-api migrate failed:\n{migrated.stderr}")
    with launched(env, "--workers", str(workers), log_path=log_path) as service:
        yield service.url


@contextmanager
def running_pgbouncer(database_url: str = BENCH_DATABASE_URL) -> Iterator[str]:
    """Debian's pgbouncer in transaction mode, its defaults otherwise, in
    front of the server of `database_url` (trust auth, as the local cluster
    has it); yields the same URL through it. pgbouncer refuses to run as
    root, so it runs as postgres when we are root."""
    target = urlsplit(database_url)
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-pgbouncer-")
    ini = Path(workdir) / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        # auth_type = any: pgbouncer logs in to the server as this user.
        f"* = host={target.hostname} port={target.port or 5432} "
        f"user={target.username or 'postgres'}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir = {workdir}\n"
        "auth_type = any\npool_mode = transaction\n"
        f"logfile = {workdir}/pgbouncer.log\n"
    )
    os.chmod(workdir, 0o777)  # noqa: S103 - a private temp dir, for the postgres user
    command = [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(ini)]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        # A port that starts listening notifies nobody: poll it.
        wait_until(listening, "pgbouncer did not start", timeout=10)
        yield urlunsplit(
            target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{port}")
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
