"""create_app(settings): wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from service import keys, logs, metrics
from service.auth.betterauth import BetterAuthVerifier
from service.auth.passwords import PasswordHasher
from service.auth.routes import routes as auth_routes
from service.auth.tokens import TokenService, auth_middleware
from service.db import Database, load_queries, migration_ids
from service.docs import routes as docs
from service.events import routes as events
from service.health.routes import routes as health_routes
from service.internals import (
    answer_malformed_http_with_problems,
    name_no_version,
    read_request_heads_within_a_deadline,
)
from service.jsonio import MAX_BODY_BYTES
from service.middlewares import answer_headers, request_context_middleware
from service.ratelimit import RateLimits
from service.settings import Settings
from service.tasks import routes as tasks


def create_app(settings: Settings) -> web.Application:
    answer_malformed_http_with_problems(logs.access_line, answer_headers)
    name_no_version()
    read_request_heads_within_a_deadline()
    app = web.Application(
        middlewares=[request_context_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
        # For every server of this app, one process or gunicorn's workers.
        handler_args={
            "header_timeout": settings.client_header_timeout,
            "keepalive_timeout": settings.keepalive_timeout,
            "allowed_origins": settings.frontend_urls,
        },
    )
    app[keys.SETTINGS] = settings
    app[keys.MIGRATIONS] = migration_ids(settings.migrations_dir)
    db = app[keys.DB] = Database(settings, load_queries(settings.queries_dir))
    better_auth = BetterAuthVerifier(settings) if settings.better_auth_url else None
    app[keys.TOKENS] = TokenService(settings, db, better_auth)
    app[keys.RATE_LIMITS] = RateLimits(settings)
    # bcrypt runs in threads, one per core, never on the event loop.
    app[keys.PASSWORDS] = PasswordHasher(settings.bcrypt_rounds, threads=os.cpu_count() or 2)
    app.cleanup_ctx.append(_resources_ctx)
    refresh_pool_gauges = functools.partial(metrics.refresh_pool_gauges, db)
    app.cleanup_ctx.append(_every(metrics.POOL_REFRESH_SECONDS, refresh_pool_gauges))
    app.cleanup_ctx.append(_every(logs.FLUSH_SECONDS, logs.flush))
    app.add_routes(health_routes)
    if settings.metrics_port is None and not settings.is_production:
        # Else on METRICS_PORT alone (service.metrics.listener), or nowhere.
        app.router.add_get("/metrics", metrics.handler(db), allow_head=False)
    app.add_routes(auth_routes)
    tasks.setup(app)
    events.setup(app)
    docs.setup(app)
    return app


def _every(
    seconds: float, work: Callable[[], None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs `work` at once, every `seconds`, and at exit."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                work()
                await asyncio.sleep(seconds)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        work()

    return ctx


async def _resources_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start what the app holds; at exit (or a later start's failure) close
    in reverse what was started."""
    db, verifier, hasher = app[keys.DB], app[keys.TOKENS].better_auth, app[keys.PASSWORDS]
    async with contextlib.AsyncExitStack() as started:
        await db.open()
        started.push_async_callback(db.close)
        started.push_async_callback(app[keys.RATE_LIMITS].close)
        if verifier is not None:
            verifier.start()
            started.push_async_callback(verifier.close)
        await hasher.start()
        started.callback(hasher.close)
        yield
