"""Liveness (/health) and readiness (/ready)."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from marshmallow import Schema, fields, validate

from service import __version__, keys
from service.docs.operation import Answer, operation
from service.errors import DatabaseUnavailable
from service.jsonio import json_response

routes = web.RouteTableDef()


def _ok() -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(["ok"]))


class HealthSchema(Schema):
    status = _ok()
    app = fields.String(required=True)
    version = fields.String(required=True)


class ReadySchema(Schema):
    status = _ok()
    database = _ok()
    events = fields.String(
        required=True,
        validate=validate.OneOf(["listen", "poll"]),
        metadata={
            "description": "How this process hears of changes for its event streams: "
            "`listen` (LISTEN on a direct connection) or `poll` (reading the change "
            "feed every 0.5 s)."
        },
    )


@routes.get("/health", allow_head=False)
@operation(tag="health", ok={200: Answer("Alive.", HealthSchema)})
async def health(request: web.Request) -> web.Response:
    """Liveness; never touches the database."""
    settings = request.app[keys.SETTINGS]
    return json_response({"status": "ok", "app": settings.app_name, "version": __version__})


@routes.get("/ready", allow_head=False)
@operation(tag="health", ok={200: Answer("Ready.", ReadySchema)}, problems=(503,))
async def ready(request: web.Request) -> web.Response:
    """Readiness: the database answers and the schema is current (at the
    newest migration on disk)."""
    db = request.app[keys.DB]
    try:
        rows = await db.many("list_applied_migrations")
    except DatabaseUnavailable:
        if db.last_failure:  # unreachable, refused credentials, TLS: say which
            raise DatabaseUnavailable(f"Not ready: {db.last_failure}.") from None
        raise
    except asyncpg.UndefinedTableError:
        raise DatabaseUnavailable(
            "The database has no schema yet; run `todo-api migrate`."
        ) from None
    missing = set(request.app[keys.MIGRATIONS]) - {r["migration_id"] for r in rows}
    if missing:
        raise DatabaseUnavailable(
            f"The schema is {len(missing)} migration(s) behind; run `todo-api migrate`."
        )
    events = request.app[keys.EVENTS].source
    return json_response({"status": "ok", "database": "ok", "events": events})
