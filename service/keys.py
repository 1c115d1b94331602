"""Every web.AppKey of the service, in one place."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from service.auth.passwords import PasswordHasher
    from service.auth.tokens import TokenService
    from service.db import Database
    from service.settings import Settings
    from service.tasks.cursor import CursorCodec

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB: web.AppKey[Database] = web.AppKey("db")
# yoyo ids of the migrations on disk: /ready compares them with the applied ones.
MIGRATIONS: web.AppKey[tuple[str, ...]] = web.AppKey("migrations")
TOKENS: web.AppKey[TokenService] = web.AppKey("tokens")
CURSORS: web.AppKey[CursorCodec] = web.AppKey("task_cursors")
# The OpenAPI document, serialised once at startup.
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi_json")
PASSWORDS: web.AppKey[PasswordHasher] = web.AppKey("passwords")

# The route template a request matched (None: no route), for the access line.
ROUTE: web.RequestKey[str | None] = web.RequestKey("route")
# The caller's user id, set by the auth middleware on protected routes.
USER_ID: web.RequestKey[uuid.UUID] = web.RequestKey("user_id")
# The caller's Better Auth user id (the token's `sub`), set only for callers
# signed in through Better Auth.
AUTH_SUBJECT: web.RequestKey[str] = web.RequestKey("auth_subject")
