"""Contract fuzzing: start the service on its own throwaway database, sign
up a real user, and run schemathesis with every check against it.

    .venv/bin/python fuzz/run.py [--examples N] [--seed S]

Exits with schemathesis's status. Used by `make test` (and so by CI)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - our own local service
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()

    name = f"todo_fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": "fuzz-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
    }
    service = [sys.executable, "-m", "service"]
    proc = None
    try:
        subprocess.run(
            [*service, "migrate"],
            env=env,
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [*service, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=REPO
        )
        for _ in range(200):
            try:
                call(base + "/ready")
                break
            except OSError:
                time.sleep(0.05)
        session = call(
            base + "/api/auth/signup",
            {
                "email": "fuzz@example.com",
                "password": "fuzz-password",
                "name": "Fuzz",
            },
        )
        st_env = {**env, "TODO_FUZZ_USER_ID": session["user"]["id"]}
        command = [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(REPO / "fuzz" / "schemathesis.toml"),
            "run",
            f"{base}/openapi.json",
            "--url",
            base,
            "--header",
            f"Authorization: Bearer {session['access_token']}",
            "--checks",
            "all",
            "--seed",
            str(args.seed),
            "--max-examples",
            str(args.examples),
            "--no-color",
        ]
        return subprocess.run(command, env=st_env, cwd=REPO, check=False).returncode
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    sys.exit(main())
