"""yoyo, driven from `todo-api migrate` and `rollback`, always under yoyo's lock; on
psycopg without server-side prepares, so through a transaction pooler too."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri
from yoyo.exceptions import LockTimeout

from service.dburl import DatabaseURL, parse_database_url

log = logging.getLogger("service.migrations")

# How long a second replica waits for the first one's migrations.
LOCK_TIMEOUT_SECONDS = 300
MIGRATION_TABLE = "_yoyo_migration"
CONNECT_TIMEOUT_SECONDS = 10


class MigrationLockHeld(Exception):
    """Another `migrate` holds yoyo's lock (or died holding it)."""


def backend(database_url: str):  # -> yoyo DatabaseBackend
    """yoyo's psycopg backend for DATABASE_URL, with no server-side prepares."""
    url = parse_database_url(database_url)

    class Backend(PostgresqlPsycopgBackend):
        def connect(self, dburi: Any) -> psycopg.Connection:
            return _connect(url)

    # yoyo reads only the database name from this URI: connect() makes the connection.
    made = Backend(parse_uri(f"postgresql+psycopg:///{url.dbname}"), MIGRATION_TABLE)
    made.init_database()
    return made


def _connect(url: DatabaseURL, dbname: str | None = None) -> psycopg.Connection:
    conninfo = url.psycopg_conninfo(dbname)
    if "connect_timeout" not in url.params:
        conninfo += f" connect_timeout={CONNECT_TIMEOUT_SECONDS}"
    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)


def migrate(
    database_url: str,
    migrations_dir: Path,
    *,
    break_lock: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> list[str]:
    """Apply every pending migration; return the ids applied."""
    with _holding_lock(database_url, migrations_dir, break_lock, lock_timeout) as (db, found):
        pending = db.to_apply(found)
        db.apply_migrations(pending)
    return [m.id for m in pending]


def rollback(
    database_url: str,
    migrations_dir: Path,
    count: int = 1,
    *,
    break_lock: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> list[str]:
    """Roll back the newest `count` applied migrations; return their ids."""
    with _holding_lock(database_url, migrations_dir, break_lock, lock_timeout) as (db, found):
        chosen = db.to_rollback(found)[:count]
        db.rollback_migrations(chosen)
    return [m.id for m in chosen]


@contextmanager
def _holding_lock(
    database_url: str, migrations_dir: Path, break_lock: bool, lock_timeout: float
) -> Iterator[tuple[Any, Any]]:
    """(yoyo's backend, the migrations on disk), holding yoyo's lock."""
    db = backend(database_url)
    try:
        holder = lock_holder(db)
        if holder and break_lock:
            log.warning("breaking the migration lock held by process %s since %s UTC", *holder)
            db.break_lock()
        elif holder:
            log.warning(
                "waiting up to %d s for the migration lock, held by process %s since %s UTC; "
                "if that process is gone, run `todo-api migrate --break-lock`",
                lock_timeout,
                *holder,
            )
        migrations = read_migrations(str(migrations_dir))
        try:
            with db.lock(timeout=lock_timeout):
                yield db, migrations
        except LockTimeout:
            holder = lock_holder(db)
            who = f"process {holder[0]} since {holder[1]} UTC" if holder else "another process"
            raise MigrationLockHeld(
                f"the migration lock is held by {who}; if no migrate is running, "
                "run `todo-api migrate --break-lock`"
            ) from None
    finally:
        db.connection.close()


def lock_holder(db: Any) -> tuple[int, Any] | None:
    """(pid, since) of whoever holds yoyo's lock, or None."""
    return db.execute(f"SELECT pid, ctime FROM {db.lock_table_quoted}").fetchone()  # noqa: S608 - yoyo's table


def ensure_database(database_url: str) -> None:
    """Create the URL's database if it does not exist (development and tests), on the
    maintenance database, outside the named queries."""
    url = parse_database_url(database_url)
    with _connect(url, "postgres") as conn:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if not conn.execute(query, (url.dbname,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.dbname)))
            log.warning("created database %r", url.dbname)
