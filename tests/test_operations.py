"""Operations: database outages, graceful stop, workers, logs, metrics."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import threading
import urllib.request
from typing import NamedTuple

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from tests.conftest import base_env, make_settings
from tests.helpers import bearer, make_task, problem, user_token
from tests.launcher import http_get, launched, wait_until, wait_until_async
from tests.proxy import TcpProxy


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


@pytest.fixture
async def proxy():
    p = TcpProxy("127.0.0.1", 5432)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def proxied_client(aiohttp_client, migrated_database, proxy):
    url = migrated_database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    settings = make_settings(
        DATABASE_URL=url, DB_CONNECT_TIMEOUT="1", DB_STATEMENT_TIMEOUT="1", DB_POOL_MIN="2"
    )
    return await aiohttp_client(create_app(settings))


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


async def test_db_errors_are_counted_in_metrics(proxied_client, proxy):
    _, token = await user_token(proxied_client)
    proxy.set_mode("refuse")
    await problem(await proxied_client.get("/api/tasks", headers=bearer(token)), 503)
    proxy.set_mode("pass")
    text = await (await proxied_client.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("todo_db_errors_total", (("kind", "unavailable"),))] >= 1


# --- graceful stop -------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_an_in_flight_request_finish(migrated_database, workers):
    with launched(base_env(migrated_database), "--workers", workers) as service:
        session = request_json(
            "POST",
            service.url + "/api/auth/signup",
            {"email": "slow@example.com", "password": "password1", "name": "S"},
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


# --- workers --------------------------------------------------------------------


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


def metric_samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_summed_over_workers(migrated_database):
    with launched(base_env(migrated_database), "--workers", "2") as service:

        def both_workers_started() -> bool:
            started = metric_samples(http_get(service.url + "/metrics").body.decode())
            return started.get(("todo_db_pool_max_connections", ())) == 2 * 2

        # Each worker reports its pool bound (2) once started; nothing else says so.
        wait_until(both_workers_started, "both workers did not report their pool", 10)
        for _ in range(30):
            assert http_get(service.url + "/health").status == 200
        for _ in range(3):  # whichever worker answers, the totals are the same
            status, raw = http_get(service.url + "/metrics")
            assert status == 200
            samples = metric_samples(raw.decode())
            key = (
                "todo_http_requests_total",
                (("method", "GET"), ("route", "/health"), ("status", "200")),
            )
            # 30, plus the readiness polls of `launched`
            assert samples[key] >= 30
            histogram = (
                "todo_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/health")),
            )
            assert samples[histogram] == samples[key]
            assert samples[("todo_db_pool_max_connections", ())] == 2 * 2  # 2 workers x max 2
        assert service.stop() == 0


# --- logs -------------------------------------------------------------------------


def test_logs_are_json_lines_with_the_request_id_on_every_line(unreachable_database_url):
    env = {**base_env(unreachable_database_url), "LOG_FORMAT": "json"}
    with launched(env) as service:
        req = urllib.request.Request(service.url + "/ready", headers={"X-Request-ID": "ops-42"})  # noqa: S310
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=10)  # noqa: S310
        service.stop()
        lines = [json.loads(line) for line in service.output().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == "ops-42"]
    access = [line for line in mine if line["logger"] == "service.access"]
    assert len(access) == 1
    assert access[0]["method"] == "GET"
    assert access[0]["path"] == "/ready"
    assert access[0]["status"] == 503
    assert access[0]["duration_ms"] >= 0
    # The warning about the 503 was logged inside the request: same id.
    assert any(line["level"] == "WARNING" and line["logger"] != "service.access" for line in mine)
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line)


def test_text_logs_are_readable_lines_with_the_request_id(migrated_database):
    env = {**base_env(migrated_database), "LOG_FORMAT": "text"}
    with launched(env) as service:
        assert http_get(service.url + "/health", {"X-Request-ID": "txt-7"}).status == 200
        assert service.stop() == 0
        lines = service.output().splitlines()
    access = [line for line in lines if "[txt-7]" in line]
    assert len(access) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    service\.access \[txt-7\] "
        r"GET /health 200 \d+\.\d\dms",
        access[0],
    ), access[0]
    assert any(line.endswith("stopped") for line in lines)  # flushed at exit, in order
