"""create_app(settings): wiring only."""

from __future__ import annotations

import asyncio
import contextlib
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
from service.health.routes import routes as health_routes
from service.internals import (
    answer_malformed_http_with_problems,
    name_no_version,
    read_request_heads_within_a_deadline,
)
from service.jsonio import MAX_BODY_BYTES
from service.middlewares import answer_headers, problem_middleware, request_context_middleware
from service.ratelimit import RateLimits
from service.settings import Settings
from service.tasks import routes as tasks


def create_app(settings: Settings) -> web.Application:
    answer_malformed_http_with_problems(logs.access_line, answer_headers)
    name_no_version()
    read_request_heads_within_a_deadline()
    app = web.Application(
        middlewares=[request_context_middleware, problem_middleware, auth_middleware],
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
    app[keys.DB] = Database(settings, load_queries(settings.queries_dir))
    better_auth = BetterAuthVerifier(settings) if settings.better_auth_url else None
    app[keys.TOKENS] = TokenService(settings, app[keys.DB], better_auth)
    app[keys.RATE_LIMITS] = RateLimits(settings)
    # bcrypt runs in threads, one per core: sign-ins use the CPU, never the
    # event loop.
    app[keys.PASSWORDS] = PasswordHasher(settings.bcrypt_rounds, threads=os.cpu_count() or 2)
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_rate_limits_ctx)
    app.cleanup_ctx.append(_better_auth_ctx)
    app.cleanup_ctx.append(_passwords_ctx)
    db = app[keys.DB]
    app.cleanup_ctx.append(
        _every(metrics.POOL_REFRESH_SECONDS, lambda: metrics.refresh_pool_gauges(db))
    )
    app.cleanup_ctx.append(_every(logs.FLUSH_SECONDS, logs.flush))
    app.add_routes(health_routes)
    if settings.metrics_port is None and not settings.is_production:
        # Else on METRICS_PORT alone (service.metrics.listener), or nowhere.
        app.router.add_get("/metrics", metrics.handler(app[keys.DB]), allow_head=False)
    app.add_routes(auth_routes)
    tasks.setup(app)
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


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[keys.DB]
    await db.open()
    yield
    await db.close()


async def _rate_limits_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[keys.RATE_LIMITS].close()


async def _better_auth_ctx(app: web.Application) -> AsyncIterator[None]:
    verifier = app[keys.TOKENS].better_auth
    if verifier is not None:
        verifier.start()
    yield
    if verifier is not None:
        await verifier.close()


async def _passwords_ctx(app: web.Application) -> AsyncIterator[None]:
    hasher = app[keys.PASSWORDS]
    await hasher.start()
    yield
    hasher.close()
