"""The todo-api command, run as the platform runs it: a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager

import pytest

from service.db import migration_ids
from tests.conftest import MIGRATIONS_DIR, TEST_SECRET, closed_port

MIGRATION_IDS = migration_ids(MIGRATIONS_DIR)


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def base_env(database_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "LOG_FORMAT": "json",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "2",
        "SHUTDOWN_TIMEOUT": "5",
    }


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local test server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def serving(env: dict[str, str], *extra: str):
    """Run `todo-api serve` until the block ends; yields (process, base URL,
    a function that returns what it logged so far)."""
    port = closed_port()
    with (
        tempfile.TemporaryFile("w+") as logfile,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *extra,
            ],
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc,
    ):

        def logged() -> str:
            logfile.seek(0)
            return logfile.read()

        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if get(base + "/health")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            else:
                pytest.fail("the service did not start: " + logged())
            yield proc, base, logged
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_migrate_from_the_command_line_is_a_no_op_the_second_time(empty_database):
    env = base_env(empty_database)
    first = run("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(MIGRATION_IDS)} migration(s): {', '.join(MIGRATION_IDS)}" in first.stderr
    second = run("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stderr


def test_rollback_count_from_the_command_line(empty_database):
    env = base_env(empty_database)
    assert run("migrate", env=env).returncode == 0
    result = run("rollback", "--count", "2", env=env)
    assert result.returncode == 0, result.stderr
    newest_two = ", ".join(reversed(MIGRATION_IDS[-2:]))
    assert f"rolled back 2 migration(s): {newest_two}" in result.stderr


def test_rollback_of_every_migration_from_the_command_line_leaves_no_tables(empty_database):
    import psycopg

    env = base_env(empty_database)
    assert run("migrate", env=env).returncode == 0
    result = run("rollback", "--count", str(len(MIGRATION_IDS)), env=env)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(empty_database) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {t for t in tables if "yoyo" not in t} == set()
    again = run("migrate", env=env)
    assert again.returncode == 0, again.stderr
    assert f"applied {len(MIGRATION_IDS)} migration(s)" in again.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["rollback", "--count", "0"],
        ["serve", "--port", "x"],
        ["serve", "--workers", "-1"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_are_refused(args, empty_database):
    result = run(*args, env=base_env(empty_database))
    assert result.returncode == 2
    assert "usage: todo-api" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_the_service_with_exit_code_0(migrated_database, workers):
    with serving(base_env(migrated_database), "--workers", workers) as (proc, base, _logged):
        assert get(base + "/ready")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_the_service_starts_with_the_database_down(unreachable_database_url):
    with serving(base_env(unreachable_database_url)) as (proc, base, logged):
        status, body = get(base + "/health")
        assert status == 200
        status, body = get(base + "/ready")
        assert status == 503
        assert b"database-unavailable" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        output = logged()
    assert "database unreachable at startup" in output
    assert TEST_SECRET not in output
