"""Every web.AppKey and web.RequestKey of the service. It imports nothing of
the service, so any module may import it; value types are named in comments."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

from aiohttp import web

SETTINGS: web.AppKey[Any] = web.AppKey("settings")  # service.settings.Settings
DB: web.AppKey[Any] = web.AppKey("db")  # service.db.Database
# yoyo ids of the migrations on disk: /ready compares them with the applied ones.
MIGRATIONS: web.AppKey[tuple[str, ...]] = web.AppKey("migrations")
TOKENS: web.AppKey[Any] = web.AppKey("tokens")  # service.auth.tokens.TokenService
CURSORS: web.AppKey[Any] = web.AppKey("task_cursors")  # service.tasks.cursor.CursorCodec
SYNC_TOKENS: web.AppKey[Any] = web.AppKey("sync_tokens")  # service.tasks.sync.SyncTokens
EVENTS: web.AppKey[Any] = web.AppKey("events")  # service.events.hub.Hub
# The OpenAPI document, serialised once at startup.
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi_json")
PASSWORDS: web.AppKey[Any] = web.AppKey("passwords")  # service.auth.passwords.PasswordHasher
RATE_LIMITS: web.AppKey[Any] = web.AppKey("rate_limits")  # service.ratelimit.RateLimits

# The caller's user id, set by the auth middleware on protected routes.
USER_ID: web.RequestKey[uuid.UUID] = web.RequestKey("user_id")
# The caller's Better Auth user id (the token's `sub`), for Better Auth callers.
AUTH_SUBJECT: web.RequestKey[str] = web.RequestKey("auth_subject")
# The caller's verified token (service.auth.tokens._Verified).
TOKEN: web.RequestKey[Any] = web.RequestKey("token")
# The client address (service.clients), set by the request-context middleware.
CLIENT: web.RequestKey[str] = web.RequestKey("client")

# The user the current request works for (None: sign-up, /health): the
# Database, which has no request, keeps each within DB_MAX_PER_USER connections.
ACTING_USER: ContextVar[uuid.UUID | None] = ContextVar("acting_user", default=None)
