"""Sign-out as the platform runs the service: `serve --workers 2`, a token
that both workers have verified and cached, signed out through one of
them, is refused by both a second later (API.md: "within a second, on
every worker and replica")."""

from __future__ import annotations

import json
import os
import time
from http.client import HTTPConnection

from tests.conftest import base_env
from tests.helpers import PASSWORD, TASKS
from tests.launcher import HOST, launched, wait_until
from tests.test_workers import children_of


def serving_pid(conn: HTTPConnection, port: int, workers: list[int]) -> int | None:
    """Which worker holds the server end of `conn`: its socket's inode, from
    /proc/net/tcp, among the workers' open files."""
    client_port = conn.sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.split(":")[1], 16) == port
                and int(remote.split(":")[1], 16) == client_port
            ):
                inode = fields[9]
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except FileNotFoundError:  # closed meanwhile
                continue
    return None


def call(conn: HTTPConnection, method: str, path: str, token: str | None = None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_a_token_signed_out_on_one_worker_is_refused_by_both_a_second_later(
    migrated_database,
):
    with launched(base_env(migrated_database), "--workers", "2") as service:
        workers = children_of(service.process.pid)
        assert len(workers) == 2
        first = HTTPConnection(HOST, service.port, timeout=10)
        status, body = call(
            first,
            "POST",
            "/api/auth/signup",
            body={"email": "ann@example.com", "password": PASSWORD, "name": "Ann"},
        )
        assert status == 201, body
        token = json.loads(body)["access_token"]

        # One kept-alive connection to each worker, each having served the
        # token (so each worker has it verified and cached).
        on: dict[int, HTTPConnection] = {}

        def both_workers_served_it() -> bool:
            conn = HTTPConnection(HOST, service.port, timeout=10)
            status, body = call(conn, "GET", TASKS, token)
            assert status == 200, body
            pid = serving_pid(conn, service.port, workers)
            if pid is None or pid in on:
                conn.close()
            else:
                on[pid] = conn
            return len(on) == 2

        # Which worker accepts a connection is the kernel's choice: connect
        # until each has taken one.
        wait_until(both_workers_served_it, "one worker never accepted a connection", 20)
        a, b = on.values()
        for conn in (a, b):  # still cached and good on both
            assert call(conn, "GET", TASKS, token)[0] == 200

        assert call(a, "POST", "/api/auth/signout", token)[0] == 204
        signed_out = time.monotonic()
        time.sleep(1.0)  # the contract's second, itself the condition under test

        for conn in (a, b):
            for path in (TASKS, "/api/auth/me"):
                status, body = call(conn, "GET", path, token)
                assert status == 401, body
        for _ in range(10):  # new connections, whichever worker takes them
            fresh = HTTPConnection(HOST, service.port, timeout=10)
            try:
                assert call(fresh, "GET", TASKS, token)[0] == 401
            finally:
                fresh.close()
        assert time.monotonic() - signed_out >= 1.0
        for conn in (first, a, b):
            conn.close()
