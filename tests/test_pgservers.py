"""The fixtures of tests/pgservers.py are what they claim: a cluster with TLS
and SCRAM, and pgbouncer in transaction mode in front of it."""

from __future__ import annotations

import asyncpg
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.pgservers import PgBouncer, ScramCluster, postgres_url

# Registers the fixtures; a no-op once tests/conftest.py lists the plugin too.
pytest_plugins = ["tests.pgservers"]


def fetchone(url: str, query: str, **kwargs):
    with psycopg.connect(url, connect_timeout=5, **kwargs) as conn:
        return conn.execute(query).fetchone()


def test_url_percent_encodes_every_part():
    url = postgres_url("127.0.0.1", 5432, "a db", "u@x", "p@ss:w/rd#1?", sslrootcert="/a b/ca.crt")
    assert url == (
        "postgresql://u%40x:p%40ss%3Aw%2Frd%231%3F@127.0.0.1:5432/a%20db?sslrootcert=%2Fa%20b%2Fca.crt"
    )
    assert conninfo_to_dict(url) == {
        "user": "u@x",
        "password": "p@ss:w/rd#1?",
        "host": "127.0.0.1",
        "port": "5432",
        "dbname": "a db",
        "sslrootcert": "/a b/ca.crt",
    }


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_verify_full(scram_cluster: ScramCluster, host: str):
    url = scram_cluster.url("postgres", sslmode="verify-full", sslrootcert=scram_cluster.ca_file)
    url = url.replace("@127.0.0.1:", f"@{host}:")
    row = fetchone(url, "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert row == ("todo", True)


async def test_asyncpg_verify_full(scram_cluster: ScramCluster):
    url = scram_cluster.url("postgres", sslmode="verify-full", sslrootcert=scram_cluster.ca_file)
    conn = await asyncpg.connect(url, timeout=5)
    try:
        ssl = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()
    assert ssl is True


def test_certificate_is_not_trusted_without_the_ca(scram_cluster: ScramCluster):
    url = scram_cluster.url("postgres", sslmode="verify-full", sslrootcert="system")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        fetchone(url, "SELECT 1")


def test_tls_only_role_is_refused_without_tls(scram_cluster: ScramCluster):
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        fetchone(scram_cluster.url("postgres", user="tls_only", sslmode="disable"), "SELECT 1")
    url = scram_cluster.url("postgres", user="tls_only", sslmode="require")
    assert fetchone(url, "SELECT current_user") == ("tls_only",)


def test_wrong_password_is_refused(scram_cluster: ScramCluster):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        fetchone(scram_cluster.url("postgres", password="wrong"), "SELECT 1")


def test_passwords_are_scram(scram_cluster: ScramCluster):
    with psycopg.connect(scram_cluster.admin_url) as conn:
        rows = conn.execute(
            "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid"
            " WHERE rolpassword IS NOT NULL ORDER BY rolname"
        ).fetchall()
        methods = conn.execute(
            "SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1"
        ).fetchall()
    assert rows == [("tls_only", True), ("todo", True)]
    assert methods == [("peer",), ("reject",), ("scram-sha-256",)]


def test_create_database_is_owned_by_todo(scram_cluster: ScramCluster):
    name = scram_cluster.create_database()
    with psycopg.connect(scram_cluster.url(name)) as conn:
        conn.execute("CREATE TABLE t (id int)")
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert owner == ("todo",)
    assert name != scram_cluster.create_database()


def test_pgbouncer_is_debian_s(pgbouncer: PgBouncer):
    assert pgbouncer.version >= (1, 18)
    assert "pool_mode = transaction" in pgbouncer.ini_file.read_text()


def test_through_pgbouncer_tls_to_the_server(pgbouncer: PgBouncer):
    query = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    with psycopg.connect(pgbouncer.url("postgres"), prepare_threshold=None) as conn:
        assert not conn.pgconn.ssl_in_use  # plain TCP from the client to pgbouncer
        assert conn.execute(query).fetchone() == ("todo", True)
    # Only a TLS connection from pgbouncer to PostgreSQL lets tls_only in.
    url = pgbouncer.url("postgres", user="tls_only")
    assert fetchone(url, query, prepare_threshold=None) == ("tls_only", True)


def test_pgbouncer_refuses_a_wrong_password(pgbouncer: PgBouncer):
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        fetchone(pgbouncer.url("postgres", password="wrong"), "SELECT 1")


def test_pgbouncer_pools_per_transaction(scram_cluster: ScramCluster, pgbouncer: PgBouncer):
    # A database of its own: the pool (database, user) serves only these two.
    url = pgbouncer.url(scram_cluster.create_database())
    pid = "SELECT pg_backend_pid()"
    with (
        psycopg.connect(url, autocommit=True, prepare_threshold=None) as a,
        psycopg.connect(url, autocommit=True, prepare_threshold=None) as b,
    ):
        (first,) = a.execute(pid).fetchone()
        # a's server was given back after its transaction: b gets it ...
        with b.transaction():
            assert b.execute(pid).fetchone() == (first,)
            # ... and while b holds it, a's next transaction runs on another.
            (second,) = a.execute(pid).fetchone()
    assert second != first


async def test_asyncpg_through_pgbouncer(pgbouncer: PgBouncer):
    conn = await asyncpg.connect(pgbouncer.url("postgres"), statement_cache_size=0, timeout=5)
    try:
        assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
    finally:
        await conn.close()


def test_pgbouncer_restart(pgbouncer: PgBouncer):
    pgbouncer.restart()
    assert fetchone(pgbouncer.url("postgres"), "SELECT 1", prepare_threshold=None) == (1,)


def test_cluster_stop_start_restart(scram_cluster: ScramCluster):
    url = scram_cluster.url("postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        scram_cluster.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert fetchone(url, "SELECT 1") == (1,)
    scram_cluster.stop()
    try:
        assert not scram_cluster.is_ready()
        with pytest.raises(psycopg.OperationalError, match="refused"):
            fetchone(url, "SELECT 1")
    finally:
        scram_cluster.start()
    assert fetchone(url, "SELECT 1") == (1,)
