"""The todo-api command, run as the platform runs it: a real process."""

from __future__ import annotations

import shutil
import signal

import pytest

from service.db import migration_ids
from tests.conftest import MIGRATIONS_DIR, TEST_SECRET, base_env
from tests.helpers import json_lines
from tests.launcher import free_port, http_get, launched, processes_running, todo_api, wait_until

MIGRATION_IDS = migration_ids(MIGRATIONS_DIR)


def test_migrate_from_the_command_line_is_a_no_op_the_second_time(empty_database):
    env = base_env(empty_database)
    first = todo_api("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(MIGRATION_IDS)} migration(s): {', '.join(MIGRATION_IDS)}" in first.stderr
    second = todo_api("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stderr


@pytest.mark.parametrize("command", [("migrate",), ("rollback", "--count", "1")])
def test_break_lock_from_the_command_line_clears_a_killed_migrates_lock(empty_database, command):
    import psycopg

    env = base_env(empty_database)
    assert todo_api("migrate", env=env).returncode == 0
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")
    result = todo_api(*command, "--break-lock", env=env)
    assert result.returncode == 0, result.stderr
    assert "breaking the migration lock held by process 999999" in result.stderr
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone()[0] == 0


def test_rollback_count_from_the_command_line(empty_database):
    env = base_env(empty_database)
    assert todo_api("migrate", env=env).returncode == 0
    result = todo_api("rollback", "--count", "2", env=env)
    assert result.returncode == 0, result.stderr
    newest_two = ", ".join(reversed(MIGRATION_IDS[-2:]))
    assert f"rolled back 2 migration(s): {newest_two}" in result.stderr


def test_rollback_of_every_migration_from_the_command_line_leaves_no_tables(empty_database):
    import psycopg

    env = base_env(empty_database)
    assert todo_api("migrate", env=env).returncode == 0
    result = todo_api("rollback", "--count", str(len(MIGRATION_IDS)), env=env)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(empty_database) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert {t for t in tables if "yoyo" not in t} == set()
    again = todo_api("migrate", env=env)
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
    result = todo_api(*args, env=base_env(empty_database))
    assert result.returncode == 2
    assert "usage: todo-api" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_the_service_with_exit_code_0(migrated_database, workers, stop):
    with launched(base_env(migrated_database), "--workers", workers) as service:
        assert http_get(service.url + "/ready").status == 200
        assert service.stop(stop) == 0
        assert "Traceback" not in service.output()


def test_sigterm_while_the_workers_start_still_drains_and_exits_0(migrated_database):
    # Sent as the workers are forked: a worker that lost it would serve on
    # until the arbiter's deadline (SHUTDOWN_TIMEOUT + 2 s) killed it.
    env = {**base_env(migrated_database), "SHUTDOWN_TIMEOUT": "30"}
    with launched(env, "--workers", "2", ready=False) as service:
        # The line is written as the workers fork; a log file cannot notify us.
        wait_until(lambda: "serving on" in service.output(), "no `serving on` line", 10)
        assert service.stop(timeout=15) == 0
        assert "Traceback" not in service.output()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_broken_query_file_stops_serve_at_once_with_one_line(
    unreachable_database_url, tmp_path, workers
):
    sql_dir = tmp_path / "sql"
    shutil.copytree(MIGRATIONS_DIR.parent, sql_dir)
    broken = sorted((sql_dir / "queries").rglob("*.sql"))[0]
    broken.write_text("-- nme: broken\n" + broken.read_text().split("\n", 1)[1])
    port = str(free_port())
    env = {**base_env(unreachable_database_url), "SQL_DIR": str(sql_dir)}

    # The timeout is the check for "at once, not a restart loop".
    result = todo_api(
        "serve", "--host", "127.0.0.1", "--port", port, "--workers", workers, env=env, timeout=20
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = json_lines(result.stderr)
    errors = [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert len(errors) == 1, result.stderr
    assert errors[0]["msg"].startswith("cannot start: QueryFileError: ")
    assert str(broken) in errors[0]["msg"]
    assert not any("serving on" in line["msg"] for line in lines)
    assert processes_running("serve", "--port", port) == []


def test_the_service_starts_with_the_database_down(unreachable_database_url):
    with launched(base_env(unreachable_database_url)) as service:
        status, body = http_get(service.url + "/health")
        assert status == 200
        status, body = http_get(service.url + "/ready")
        assert status == 503
        assert b"database-unavailable" in body
        assert service.stop(signal.SIGTERM) == 0
        output = service.output()
    assert "database unreachable at startup" in output
    assert TEST_SECRET not in output


def test_metrics_port_on_the_api_port_stops_serve_with_one_line(unreachable_database_url):
    port = str(free_port())
    env = {**base_env(unreachable_database_url), "METRICS_PORT": port}
    result = todo_api("serve", "--host", "127.0.0.1", "--port", port, env=env, timeout=20)
    assert result.returncode == 1
    (error,) = [line for line in json_lines(result.stderr) if line["level"] == "ERROR"]
    assert error["msg"] == f"METRICS_PORT must not be the API port ({port})"
