"""Every web.AppKey of the service, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from service.db import Database
    from service.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB: web.AppKey[Database] = web.AppKey("db")
# yoyo ids of the migrations on disk: /ready compares them with the applied ones.
MIGRATIONS: web.AppKey[tuple[str, ...]] = web.AppKey("migrations")
