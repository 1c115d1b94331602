"""create_app(settings): wiring only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp_cors
from aiohttp import web

from service import keys
from service.db import Database, load_queries, migration_ids
from service.errors import problem_middleware
from service.health.routes import routes as health_routes
from service.jsonio import MAX_BODY_BYTES
from service.middlewares import request_context_middleware
from service.settings import Settings

EXPOSED_HEADERS = ("ETag", "Location", "Link", "X-Request-ID")


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[request_context_middleware, problem_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[keys.SETTINGS] = settings
    app[keys.MIGRATIONS] = migration_ids(settings.migrations_dir)
    app[keys.DB] = Database(settings, load_queries(settings.queries_dir))
    app.cleanup_ctx.append(_database_ctx)
    app.add_routes(health_routes)
    _setup_cors(app, settings)
    return app


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[keys.DB]
    await db.open()
    yield
    await db.close()


def _setup_cors(app: web.Application, settings: Settings) -> None:
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=True,
        expose_headers=EXPOSED_HEADERS,
        allow_headers="*",
        allow_methods="*",
        max_age=600,
    )
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in settings.frontend_urls})
    for route in list(app.router.routes()):
        cors.add(route)
