"""Start `todo-api serve` for a benchmark: its own database, migrated, on a
free local port; stopped with SIGTERM when the block ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/todo_bench"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(
    extra_env: dict[str, str] | None = None, workers: int = 1, log_path: str = os.devnull
) -> Iterator[str]:
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": BENCH_DATABASE_URL,
        "BETTER_AUTH_SECRET": "bench-secret-bench-secret-bench-secret-0123",
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    todo_api = [sys.executable, "-m", "service"]
    subprocess.run(
        [*todo_api, "migrate"],
        env=env,
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*todo_api, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "/ready", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the service did not become ready")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
