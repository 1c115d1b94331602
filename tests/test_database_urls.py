"""The URLs people paste, against a real PostgreSQL with SCRAM passwords and
TLS: serve (asyncpg) and migrate (libpq) each connect, and a URL or a server
that refuses says why in one line, without the password."""

from __future__ import annotations

import logging

import pytest

from service.app import create_app
from service.migrations import migrate
from tests.conftest import MIGRATIONS_DIR, base_env, make_settings
from tests.helpers import problem
from tests.launcher import todo_api


@pytest.fixture
def database(scram_cluster):
    return scram_cluster.create_database()


def shapes(cluster, database: str) -> dict[str, str]:
    plain = cluster.url(database)
    rest = plain.split("://", 1)[1]
    return {
        # Neon's console string: TLS and SCRAM with channel binding.
        "neon": cluster.url(database, sslmode="require", channel_binding="require"),
        "postgres scheme": "postgres://" + rest + "?sslmode=require",
        "asyncpg seed": "postgresql+asyncpg://" + rest + "?ssl=require",
        "psycopg seed": "postgresql+psycopg://" + rest + "?sslmode=prefer",
        "verify-full": cluster.url(
            database, sslmode="verify-full", sslrootcert=str(cluster.ca_file)
        ),
        "options": cluster.url(database, options="-c search_path=public"),
    }


@pytest.mark.parametrize(
    "shape", ["neon", "postgres scheme", "asyncpg seed", "psycopg seed", "verify-full", "options"]
)
async def test_serve_and_migrate_work_with_the_urls_people_paste(
    aiohttp_client, scram_cluster, database, shape
):
    url = shapes(scram_cluster, database)[shape]
    assert len(migrate(url, MIGRATIONS_DIR)) > 0  # libpq, as `todo-api migrate`
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=url)))
    resp = await client.get("/ready")
    assert resp.status == 200, await resp.text()
    resp = await client.post(
        "/api/auth/signup",
        json={"email": "ann@example.com", "password": "correct horse", "name": "Ann"},
    )
    assert resp.status == 201, await resp.text()


async def test_a_tls_only_role_without_tls_is_explained(
    aiohttp_client, scram_cluster, database, caplog
):
    url = scram_cluster.url(database, user="tls_only", sslmode="disable")
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=url)))
    with caplog.at_level(logging.WARNING, logger="service.db"):
        body = await problem(await client.get("/ready"), 503)
    # The kind only: the server's reason names the role, database and host.
    assert body["detail"] == "Not ready: the database refused the connection without TLS (pg_hba)."
    (line,) = [r.getMessage() for r in caplog.records if "connect to" in r.getMessage()]
    assert "pg_hba.conf" in line  # the server's own reason
    assert scram_cluster.passwords["tls_only"] not in line


async def test_a_wrong_password_is_explained(aiohttp_client, scram_cluster, database, caplog):
    url = scram_cluster.url(database, password="not-the-password")
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=url)))
    with caplog.at_level(logging.WARNING, logger="service.db"):
        body = await problem(await client.get("/ready"), 503)
    assert body["detail"] == "Not ready: the database refused the service's credentials."
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "password authentication failed" in text
    assert "not-the-password" not in text


def test_migrate_with_a_tls_only_role_without_tls_says_why_in_one_line(scram_cluster, database):
    url = scram_cluster.url(database, user="tls_only", sslmode="disable")
    result = todo_api("migrate", env=base_env(url), timeout=60)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if '"ERROR"' in line or "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "pg_hba.conf" in errors[0]
    assert "Traceback" not in result.stderr
    assert scram_cluster.passwords["tls_only"] not in result.stderr


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_an_unencoded_password_stops_the_command_in_one_line(scram_cluster, command):
    password = "p@ss/w:rd"
    url = f"postgresql://todo:{password}@127.0.0.1:{scram_cluster.port}/todo"
    result = todo_api(command, env=base_env(url), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("todo-api: configuration error: DATABASE_URL")
    assert "percent-encode" in lines[0]
    for part in ("p@ss", "ss/w", "w:rd"):
        assert part not in result.stderr
