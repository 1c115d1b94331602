"""`serve --workers N` (service/workers.py): gunicorn's arbiter and its
workers, run as the platform runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT, base_env
from tests.helpers import json_lines
from tests.launcher import http_get, launched, processes_running, wait_until


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_workers_share_the_port_and_a_dead_one_is_replaced(migrated_database):
    with launched(base_env(migrated_database), "--workers", "3") as service:
        workers = children_of(service.process.pid)
        assert len(workers) == 3
        os.kill(workers[0], signal.SIGKILL)

        def replaced() -> bool:
            now = children_of(service.process.pid)
            return len(now) == 3 and workers[0] not in now

        # The arbiter's fork is not announced to us: poll its children.
        wait_until(replaced, "the dead worker was not replaced", 5)
        now = children_of(service.process.pid)
        assert len(now) == 3
        assert workers[0] not in now
        assert all(http_get(service.url + "/health").status == 200 for _ in range(20))
        assert service.stop() == 0


# An application whose start-up fails in every worker, after the command has
# built it: gunicorn's boot-error path rather than the check before forking.
BOOT_FAILS = """
import socket, sys
from aiohttp import web
from service import logs, workers

logs.configure("INFO", "json")

async def fail(_app):
    raise RuntimeError("the cache is down\\nsecond line")

app = web.Application()
app.on_startup.append(fail)
sock = socket.create_server(("127.0.0.1", 0))
sys.exit(workers.serve(app, sock, int(sys.argv[1]), 5.0))
"""


def test_workers_that_cannot_boot_stop_the_command_without_a_restart_loop():
    marker = f"boot-fails-{os.getpid()}-{time.monotonic_ns()}"
    result = subprocess.run(
        [sys.executable, "-c", BOOT_FAILS, "3", marker],
        cwd=REPO_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=20,  # a restart loop would never end
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = json_lines(result.stderr)
    reasons = [line["msg"] for line in lines if "cannot start" in line["msg"]]
    # One line per worker at most, each naming the problem; never a second round.
    assert 1 <= len(reasons) <= 3, result.stderr
    assert all(msg.endswith("cannot start: RuntimeError: the cache is down") for msg in reasons)
    assert any("Worker failed to boot" in line["msg"] for line in lines)  # the arbiter's line
    assert processes_running(marker) == []
