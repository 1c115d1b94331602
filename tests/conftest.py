"""Test fixtures: a throwaway PostgreSQL database per test session, built
from the real migration files; a clean state per test; the app under
aiohttp_client. No mocks, no SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from service.app import create_app
from service.migrations import migrate
from service.settings import DEFAULT_SQL_DIR, Settings
from tests.launcher import REPO_ROOT as REPO_ROOT  # re-exported: the tests' one repo root
from tests.launcher import UNREACHED_RATE_LIMITS, free_port
from tests.proxy import TcpProxy

# The deployment-shaped servers: a SCRAM + TLS cluster and PgBouncer.
pytest_plugins = ["tests.pgservers"]

# Where throwaway databases are made. CI and the README's test command use the
# local server; point this elsewhere to test against another one.
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MIGRATIONS_DIR = DEFAULT_SQL_DIR / "migrations"
# Random (secrets.token_urlsafe(36)), so production settings accept it too;
# it signs only the tests' tokens.
TEST_SECRET = "iKJGcA2VfC3QjKDTcCzsHheF5Rna2jM53S_Sb7oG8X-oaka0"


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))


def create_database(prefix: str = "todo_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database with no schema at all, dropped after the test."""
    url = create_database("todo_empty")
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def migrated_database() -> Iterator[str]:
    """The session's database, migrated with the real migration files."""
    url = create_database()
    migrate(url, MIGRATIONS_DIR)
    yield url
    drop_database(url)


@pytest.fixture(autouse=True)
def clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that uses the session database starts with empty tables."""
    if "migrated_database" not in request.fixturenames:
        yield
        return
    url = request.getfixturevalue("migrated_database")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE users, tasks, better_auth_departures, better_auth_ended_tokens CASCADE"
        )
    yield


def make_settings(**overrides: str) -> Settings:
    env = {
        "APP_ENV": "test",
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "BCRYPT_ROUNDS": "4",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "5",
        "LOG_FORMAT": "text",
        "DB_CONNECT_TIMEOUT": "2",
        "DB_STATEMENT_TIMEOUT": "5",
        "SHUTDOWN_TIMEOUT": "5",
        **UNREACHED_RATE_LIMITS,
    }
    env.update(overrides)
    return Settings.from_mapping(env)


@pytest.fixture
def settings(migrated_database: str) -> Settings:
    return make_settings(DATABASE_URL=migrated_database)


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    return await aiohttp_client(create_app(settings))


def base_env(database_url: str) -> dict[str, str]:
    """The environment of a `todo-api` process the tests run (tests.launcher)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "LOG_FORMAT": "json",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "2",
        "SHUTDOWN_TIMEOUT": "5",
        **UNREACHED_RATE_LIMITS,
    }


@pytest.fixture
def unreachable_database_url() -> str:
    # Nothing listens on a free port: connecting is refused at once.
    return f"postgresql://postgres@127.0.0.1:{free_port()}/todo"


@pytest.fixture
async def proxy() -> TcpProxy:
    """A TCP proxy to the local PostgreSQL, to cut the link as an outage does."""
    p = TcpProxy("127.0.0.1", 5432)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def proxied_client(aiohttp_client, migrated_database, proxy):
    """The app on the session database through `proxy`, with short timeouts."""
    url = migrated_database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    settings = make_settings(
        DATABASE_URL=url, DB_CONNECT_TIMEOUT="1", DB_STATEMENT_TIMEOUT="1", DB_POOL_MIN="2"
    )
    return await aiohttp_client(create_app(settings))
