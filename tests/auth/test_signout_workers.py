"""Sign-out as the platform runs the service: `serve --workers 2`, a token
that both workers have verified and cached, signed out through one of
them, is refused by both a second later (API.md: "within a second, on
every worker and replica"): the service's own, and a real Better Auth
server's, alone and everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import time
from http.client import HTTPConnection

import pytest

from tests.auth.test_better_auth import claims_of
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


def cached_on_both_workers(service, workers: list[int], token: str):
    """One kept-alive connection to each worker, each having served the
    token (so each worker has it verified and cached)."""
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
    return list(on.values())


def refused_by_both_a_second_later(service, on: list[HTTPConnection], tokens: list[str], signout):
    """Sign out through the first connection's worker (`signout(conn)`); a
    second later every one of `tokens` is refused by both workers."""
    a, b = on
    for conn in (a, b):  # still cached and good on both
        for token in tokens:
            assert call(conn, "GET", TASKS, token)[0] == 200
    signout(a)
    signed_out = time.monotonic()
    time.sleep(1.0)  # the contract's second, itself the condition under test

    for token in tokens:
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
    for conn in on:
        conn.close()


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
        first.close()
        on = cached_on_both_workers(service, workers, token)

        def signout(conn: HTTPConnection) -> None:
            assert call(conn, "POST", "/api/auth/signout", token)[0] == 204

        refused_by_both_a_second_later(service, on, [token], signout)


@pytest.mark.parametrize("everywhere", [False, True])
def test_a_better_auth_token_signed_out_on_one_worker_is_refused_by_both_a_second_later(
    migrated_database, better_auth, everywhere
):
    env = base_env(migrated_database) | {"BETTER_AUTH_URL": better_auth.url}
    with launched(env, "--workers", "2") as service:
        workers = children_of(service.process.pid)
        assert len(workers) == 2
        user = asyncio.run(better_auth.sign_up())
        token = asyncio.run(better_auth.token(user))
        tokens = [token]
        if everywhere:  # and one more of the same person, from another second
            later = {}

            def issued_later() -> bool:
                later["token"] = asyncio.run(better_auth.token(user))
                return claims_of(later["token"])["iat"] > claims_of(token)["iat"]

            wait_until(issued_later, "no token issued a second later", 5)
            tokens.append(later["token"])
        on = cached_on_both_workers(service, workers, token)
        for other in tokens[1:]:
            for conn in on:
                assert call(conn, "GET", TASKS, other)[0] == 200

        def signout(conn: HTTPConnection) -> None:
            body = {"everywhere": True} if everywhere else None
            assert call(conn, "POST", "/api/auth/signout", token, body)[0] == 204

        refused_by_both_a_second_later(service, on, tokens, signout)
