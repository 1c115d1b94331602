"""GET /metrics (service/metrics.py): Prometheus counters, summed over
workers, and the database errors the error middleware counts."""

from __future__ import annotations

import collections
import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_env
from tests.helpers import bearer, problem, user_token
from tests.launcher import HOST, free_port, http_get, launched, wait_until

HEALTH_200 = (
    "todo_http_requests_total",
    (("method", "GET"), ("route", "/health"), ("status", "200")),
)


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


async def test_db_errors_are_counted_in_metrics(proxied_client, proxy):
    _, token = await user_token(proxied_client)
    proxy.set_mode("refuse")
    await problem(await proxied_client.get("/api/tasks", headers=bearer(token)), 503)
    proxy.set_mode("pass")
    text = await (await proxied_client.get("/metrics")).text()
    samples = metric_samples(text)
    assert samples[("todo_db_errors_total", (("kind", "unavailable"),))] >= 1


def is_problem(answer, status: int) -> bool:
    return answer.status == status and json.loads(answer.body)["status"] == status


@pytest.mark.parametrize("workers", ["1", "2"])
def test_with_metrics_port_every_workers_figures_are_there_and_only_there(
    migrated_database, workers
):
    metrics_port = free_port()
    env = {**base_env(migrated_database), "METRICS_PORT": str(metrics_port)}
    with launched(env, "--workers", workers) as service:
        scrape = f"http://{HOST}:{metrics_port}/metrics"

        def health_answered() -> float:
            answer = http_get(scrape)
            assert answer.status == 200
            return metric_samples(answer.body.decode()).get(HEALTH_200, 0)

        before = health_answered()
        # A request id starts with its process's own prefix (service.middlewares).
        answered_by: collections.Counter[str] = collections.Counter()

        def every_worker_answered() -> bool:
            with urllib.request.urlopen(service.url + "/health") as resp:  # noqa: S310 - local
                answered_by[resp.headers["X-Request-ID"][:16]] += 1
            return len(answered_by) == int(workers)

        # Which worker accepts a connection is the kernel's choice: ask until each has.
        wait_until(every_worker_answered, "not every worker answered /health", 20)
        for _ in range(3):  # whichever worker answers the scrape, it counts them all
            assert health_answered() == before + sum(answered_by.values())

        assert is_problem(http_get(service.url + "/metrics"), 404)  # never on the API port
        for path in ("/api/tasks", "/health", "/ready", "/openapi.json"):
            assert is_problem(http_get(f"http://{HOST}:{metrics_port}{path}"), 404), path
        assert service.stop() == 0
        assert f"/metrics on port {metrics_port} only (METRICS_PORT)" in service.output()


def test_in_production_without_metrics_port_metrics_are_not_served(migrated_database):
    with launched({**base_env(migrated_database), "APP_ENV": "production"}) as service:
        assert is_problem(http_get(service.url + "/metrics"), 404)
        assert service.stop() == 0
        output = service.output()
    assert "/metrics is not served: APP_ENV=production and METRICS_PORT is not set" in output
