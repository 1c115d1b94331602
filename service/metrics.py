"""Prometheus metrics (prometheus-client), served at GET /metrics: on the
API port outside production, or on METRICS_PORT alone (listener()).

With `serve --workers N` the workers share PROMETHEUS_MULTIPROC_DIR and the
one that answers the scrape sums them all (MultiProcessCollector)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from service import keys
from service.docs.operation import Answer, operation

REQUESTS = Counter(
    "todo_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "todo_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_ERRORS = Counter(
    "todo_db_errors_total",
    "Requests that failed on the database, by kind: unavailable (down or "
    "unreachable), timeout (statement_timeout), pool_exhausted (up, but every "
    "pool connection stayed busy for DB_CONNECT_TIMEOUT).",
    ["kind"],
)
POOL_WAIT = Histogram(
    "todo_db_pool_wait_seconds",
    "Time a query waited for a pool connection when none was idle.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
USER_SHARE_REFUSED = Counter(
    "todo_db_user_share_refused_total",
    "Requests answered 429 because their user held DB_MAX_PER_USER connections "
    "and none came back within a second.",
)
SEARCH_REFUSED = Counter(
    "todo_search_refused_total",
    "Searches (q listings) refused, by reason: too_broad (past SEARCH_TIMEOUT, 422), "
    "in_progress (the user's previous search still ran, 429), busy (SEARCH_CONCURRENCY "
    "searches ran, 503).",
    ["reason"],
)
# livesum: with several workers, the sum over the processes alive now.
POOL_CONNECTIONS = Gauge(
    "todo_db_pool_connections",
    "Pool connections by state (open, in_use), summed over workers.",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "todo_db_pool_max_connections",
    "The pool's upper bound (DB_POOL_MAX), summed over workers.",
    multiprocess_mode="livesum",
)
POOL_REFRESH_SECONDS = 5.0
# The bounded bcrypt queue (service/auth/passwords.py): what it admits, what
# it holds now, and the sign-ins and sign-ups it answered 503 at once.
PASSWORD_HASH_CAPACITY = Gauge(
    "todo_password_hash_capacity",
    "Password hashes admitted at once (running and waiting), summed over workers.",
    multiprocess_mode="livesum",
)
PASSWORD_HASHES_IN_FLIGHT = Gauge(
    "todo_password_hashes_in_flight",
    "Password hashes admitted and not finished, summed over workers.",
    multiprocess_mode="livesum",
)
PASSWORD_HASH_REJECTED = Counter(
    "todo_password_hash_rejected_total",
    "Sign-ups (hash) and sign-ins (check) answered 503 because the bcrypt queue was full.",
    ["kind"],
)
# The rate-limit storage (Redis) unreachable: service/ratelimit.py.
RATE_LIMIT_FALLBACK = Gauge(
    "todo_rate_limit_storage_fallback",
    "Processes counting the per-user limit in their own memory because the "
    "rate-limit storage (Redis) is unreachable (sign-up and sign-in answer 503 meanwhile).",
    multiprocess_mode="livesum",
)
RATE_LIMIT_FALLBACKS = Counter(
    "todo_rate_limit_storage_fallbacks_total",
    "Times a process found the rate-limit storage unreachable and began counting in memory.",
)
# Live events: service/events.
EVENT_STREAMS = Gauge(
    "todo_event_streams",
    "Event streams open (GET /api/tasks/events), summed over workers.",
    multiprocess_mode="livesum",
)
EVENTS_SENT = Counter(
    "todo_events_sent_total",
    "Events sent on event streams, by event (task, deleted).",
    ["event"],
)

UNMATCHED = "unmatched"  # 404s and friends: no route template, no cardinality blow-up


# (method, route, status) -> (counter child, histogram child): labels() takes
# a lock and validates its arguments on every call; this is one dict lookup.
_children: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}


def observe(method: str, route: str | None, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _children.get(key)
    if children is None:
        label = route or UNMATCHED
        children = (REQUESTS.labels(method, label, str(status)), LATENCY.labels(method, label))
        if len(_children) < 10_000:  # methods x routes x statuses is small; stay bounded
            _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


class PoolStats(Protocol):
    """What the gauges read: service.db's Database (which imports this module)."""

    @property
    def pool(self) -> Any: ...

    @property
    def pool_max(self) -> int: ...


def refresh_pool_gauges(db: PoolStats) -> None:
    """Every POOL_REFRESH_SECONDS (service.app) and on a scrape, so a scrape
    answered by another worker still sees this one's pool."""
    pool = db.pool
    size = pool.get_size() if pool else 0
    idle = pool.get_idle_size() if pool else 0
    POOL_CONNECTIONS.labels("open").set(size)
    POOL_CONNECTIONS.labels("in_use").set(size - idle)
    POOL_MAX.set(db.pool_max)


def handler(db: PoolStats) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /metrics: every worker's samples, this one's pool gauges fresh."""

    @operation(
        tag="health",
        ok={
            200: Answer(
                "Metrics, summed over all workers.", {"type": "string"}, content_type="text/plain"
            )
        },
        description=(
            "On the API port only outside production with METRICS_PORT unset. With "
            "METRICS_PORT set it is served on that port alone (and absent here); in "
            "production without it, nowhere."
        ),
    )
    async def metrics(_request: web.Request) -> web.Response:
        """Prometheus metrics (text exposition format)."""
        refresh_pool_gauges(db)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return metrics


def listener(
    sock: socket.socket, middlewares: Sequence[Any]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context: while it runs, this process also answers
    GET /metrics, and nothing else, on `sock` (METRICS_PORT); `middlewares`
    (passed in: they import this module) make its 404 and 405 problems."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[keys.SETTINGS]
        scrape = web.Application(
            middlewares=middlewares,
            handler_args={
                "header_timeout": settings.client_header_timeout,
                "keepalive_timeout": settings.keepalive_timeout,
            },
        )
        scrape.router.add_get("/metrics", handler(app[keys.DB]), allow_head=False)
        runner = web.AppRunner(scrape, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        yield
        await runner.cleanup()

    return ctx


def mark_worker_dead(pid: int) -> None:
    """The supervisor calls this when a worker exits, so its live gauges
    stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
