"""GET /metrics (service/metrics.py): Prometheus counters, summed over
workers, and the database errors the error middleware counts."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_env
from tests.helpers import bearer, problem, user_token
from tests.launcher import http_get, launched, wait_until


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
