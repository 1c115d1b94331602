"""Operations: a database outage survived by the same process, and a
graceful stop that lets the request in flight finish."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import urllib.request
from typing import NamedTuple

import psycopg
import pytest

from tests.conftest import base_env
from tests.helpers import bearer, make_task, problem, user_token
from tests.launcher import launched, wait_until, wait_until_async


class JsonAnswer(NamedTuple):
    status: int
    headers: dict
    body: dict


def request_json(method: str, url: str, body=None, headers=None) -> JsonAnswer:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - local test server
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            raw = resp.read()
            return JsonAnswer(resp.status, dict(resp.headers), json.loads(raw) if raw else {})
    except urllib.error.HTTPError as exc:
        return JsonAnswer(exc.code, dict(exc.headers), json.loads(exc.read() or b"{}"))


# --- database outages --------------------------------------------------------


async def within(seconds: float, coro):
    """A hang guard, not a speed test: fail rather than wait forever."""
    return await asyncio.wait_for(coro, timeout=seconds)


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_a_database_outage_is_503_then_the_same_process_recovers(
    proxied_client, proxy, migrated_database, mode
):
    client = proxied_client
    _, token = await user_token(client)
    acknowledged = [(await make_task(client, token, title=f"before {i}")).task for i in range(5)]

    proxy.set_mode(mode)
    for method, path, body in [
        ("GET", "/api/tasks", None),
        ("POST", "/api/tasks", {"title": "during"}),
        ("GET", f"/api/tasks/{acknowledged[0]['id']}", None),
        ("GET", "/api/auth/me", None),
    ]:
        resp = await within(15, client.request(method, path, json=body, headers=bearer(token)))
        body = await problem(resp, 503)
        assert body["type"].endswith("database-unavailable")
        assert int(resp.headers["Retry-After"]) > 0
        assert "5432" not in str(body)
        assert "connection" not in str(body).lower()
    assert (await within(5, client.get("/health"))).status == 200
    ready = await within(15, client.get("/ready"))
    await problem(ready, 503)

    proxy.set_mode("pass")

    async def lists_again() -> bool:
        nonlocal resp
        resp = await within(15, client.get("/api/tasks?limit=100", headers=bearer(token)))
        return resp.status == 200

    # The pool reconnects on demand and announces nothing: poll. No restart needed.
    await wait_until_async(lists_again, "the same process did not recover", within=30)
    assert resp.status == 200
    listed = {t["id"] for t in await resp.json()}
    assert {t["id"] for t in acknowledged} <= listed
    assert (await client.get("/ready")).status == 200
    task, _ = await make_task(client, token, title="after")
    with psycopg.connect(migrated_database) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT id FROM tasks").fetchall()}
    assert {t["id"] for t in acknowledged} | {task["id"]} <= stored


# --- graceful stop -------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_an_in_flight_request_finish(migrated_database, workers):
    with launched(base_env(migrated_database), "--workers", workers) as service:
        session = request_json(
            "POST",
            service.url + "/api/auth/signup",
            {"email": "slow@example.com", "password": "correct horse", "name": "S"},
        ).body
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        status, _, task = request_json("POST", service.url + "/api/tasks", {"title": "t"}, auth)
        assert status == 201

        result: dict = {}
        with psycopg.connect(migrated_database) as locker:
            # Hold the row lock so the PATCH below waits inside the service.
            locker.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task["id"],))

            def slow_patch() -> None:
                result["answer"] = request_json(
                    "PATCH", f"{service.url}/api/tasks/{task['id']}", {"title": "finished"}, auth
                )

            thread = threading.Thread(target=slow_patch)
            thread.start()
            with psycopg.connect(migrated_database, autocommit=True) as watcher:

                def waiting_on_the_lock() -> int:
                    return watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'todo-api' AND wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    ).fetchone()[0]

                # pg_stat_activity has no notification: poll until the UPDATE blocks.
                wait_until(waiting_on_the_lock, "the PATCH never waited for the row lock", 10)
                assert waiting_on_the_lock() == 1
                service.send_signal(signal.SIGTERM)
                # Draining begins by closing the listening socket, which notifies nobody.
                wait_until(
                    lambda: refuses_connections(service.port), "still accepting after SIGTERM", 10
                )
                assert service.process.poll() is None, "exited with a request in flight"
                assert thread.is_alive(), "the in-flight request was answered or cut"
                assert waiting_on_the_lock() == 1
            locker.commit()  # let it finish
        thread.join(timeout=20)
        status, _, body = result["answer"]
        assert status == 200
        assert body["title"] == "finished"
        assert service.stop(timeout=20) == 0


def refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
