"""Start `todo-api serve` for a benchmark: its own database, migrated, on a
free local port; stopped with SIGTERM when the block ends."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


@contextmanager
def running_pgbouncer(database_url: str = BENCH_DATABASE_URL) -> Iterator[str]:
    """Debian's pgbouncer in transaction mode, its defaults otherwise, in
    front of the server of `database_url` (trust auth, as the local cluster
    has it); yields the same URL through it. pgbouncer refuses to run as
    root, so it runs as postgres when we are root."""
    from urllib.parse import urlsplit, urlunsplit

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
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("pgbouncer did not start")
        yield urlunsplit(
            target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{port}")
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
