"""yoyo, driven from the `todo-api migrate` and `rollback` commands.

yoyo needs a synchronous driver; psycopg 3 is it (`postgresql+psycopg://`).
Every apply and rollback runs under yoyo's lock, so several replicas may run
`migrate` at once: one applies, the others wait and then find nothing to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

log = logging.getLogger("service.migrations")

# How long a second replica waits for the first one's migrations.
LOCK_TIMEOUT_SECONDS = 300


def yoyo_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def _backend(database_url: str):  # -> yoyo DatabaseBackend
    return get_backend(yoyo_url(database_url))


def migrate(database_url: str, migrations_dir: Path) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    backend = _backend(database_url)
    try:
        migrations = read_migrations(str(migrations_dir))
        with backend.lock(timeout=LOCK_TIMEOUT_SECONDS):
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()


def rollback(database_url: str, migrations_dir: Path, count: int = 1) -> list[str]:
    """Roll back the newest `count` applied migrations; return their ids."""
    backend = _backend(database_url)
    try:
        migrations = read_migrations(str(migrations_dir))
        with backend.lock(timeout=LOCK_TIMEOUT_SECONDS):
            chosen = backend.to_rollback(migrations)[:count]
            backend.rollback_migrations(chosen)
        return [m.id for m in chosen]
    finally:
        backend.connection.close()


def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it does not exist (development
    and tests only). Returns True when it was created. This bootstrap runs
    on the maintenance database, outside the service's named queries."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        log.warning("created database %r", name)
        return True
