"""DATABASE_URL shape by shape: what asyncpg (serve) and libpq (migrate)
each receive, and one line, without the password, for a URL that cannot
work. The connections themselves are tested against real servers in
tests/test_database_urls.py."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import SplitResult, parse_qs, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from service.dburl import parse_database_url
from service.settings import Settings, SettingsError
from tests.conftest import TEST_SECRET

NEON = (
    "postgresql://alex:AbC123dEf@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
    "/neondb?sslmode=require&channel_binding=require"
)


class AsyncpgDsn(NamedTuple):
    parts: SplitResult
    query: dict[str, str]


def asyncpg_parts(url: str) -> AsyncpgDsn:
    parts = urlsplit(parse_database_url(url).asyncpg_dsn())
    return AsyncpgDsn(parts, {k: v[0] for k, v in parse_qs(parts.query).items()})


def libpq(url: str) -> dict[str, str]:
    return conninfo_to_dict(parse_database_url(url).psycopg_conninfo())


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "POSTGRES"]
)
def test_every_scheme_people_paste_is_read_the_same(scheme):
    url = parse_database_url(f"{scheme}://todo:pw@db.example.com:6543/app")
    assert (url.host, url.port, url.user, url.password, url.dbname) == (
        "db.example.com",
        6543,
        "todo",
        "pw",
        "app",
    )
    assert url.asyncpg_dsn() == "postgresql://todo:pw@db.example.com:6543/app"
    assert libpq(f"{scheme}://todo:pw@db.example.com:6543/app") == {
        "host": "db.example.com",
        "port": "6543",
        "user": "todo",
        "password": "pw",
        "dbname": "app",
    }


def test_neons_own_string():
    url = parse_database_url(NEON)
    assert url.pooler_hint  # the -pooler endpoint is PgBouncer in transaction mode
    assert url.channel_binding_required
    parts, query = asyncpg_parts(NEON)
    # asyncpg has no channel binding; passed on, it reaches the server as a
    # setting and every connection is refused.
    assert query == {"sslmode": "require"}
    assert parts.hostname == "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
    conninfo = libpq(NEON)
    assert conninfo["channel_binding"] == "require"  # libpq honours it
    assert conninfo["sslmode"] == "require"


def test_neons_direct_endpoint_is_no_pooler():
    assert not parse_database_url(NEON.replace("-pooler.", ".")).pooler_hint


@pytest.mark.parametrize(
    ("given", "sslmode"),
    [("ssl=require", "require"), ("ssl=true", "require"), ("ssl=false", "disable"),
     ("ssl=verify-full", "verify-full"), ("sslmode=verify-ca", "verify-ca"),
     ("ssl=require&sslmode=require", "require")],
)  # fmt: skip
def test_asyncpgs_ssl_parameter_is_an_sslmode(given, sslmode):
    url = f"postgresql+asyncpg://u:p@h/db?{given}"
    assert asyncpg_parts(url).query == {"sslmode": sslmode}
    assert libpq(url)["sslmode"] == sslmode


def test_tls_files_reach_both_drivers():
    url = "postgresql://u:p@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c&sslkey=/k"
    expected = {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.pem",
        "sslcert": "/c",
        "sslkey": "/k",
    }
    assert asyncpg_parts(url).query == expected
    assert expected.items() <= libpq(url).items()


def test_a_socket_directory():
    for url in (
        "postgresql:///todo?host=/var/run/postgresql",
        "postgresql://%2Fvar%2Frun%2Fpostgresql/todo",
        "postgresql://u@localhost/todo?host=/var/run/postgresql&port=5433",
    ):
        parsed = parse_database_url(url)
        assert parsed.host == "/var/run/postgresql"
        assert asyncpg_parts(url).query["host"] == "/var/run/postgresql"
        assert libpq(url)["host"] == "/var/run/postgresql"
    assert parse_database_url(url).port == 5433


def test_options_and_application_name_pass_through():
    url = "postgresql://u:p@h/db?options=-c%20search_path%3Dpublic&application_name=x"
    assert asyncpg_parts(url).query == {"options": "-c search_path=public", "application_name": "x"}
    assert libpq(url)["options"] == "-c search_path=public"


def test_pgbouncer_true_means_a_transaction_pooler():
    assert parse_database_url("postgresql://u:p@h:6543/db?pgbouncer=true").pooler_hint
    assert not parse_database_url("postgresql://u:p@h:6543/db?pgbouncer=false").pooler_hint
    assert "pgbouncer" not in asyncpg_parts("postgresql://u:p@h/db?pgbouncer=true").query


def test_an_encoded_password_round_trips():
    url = "postgresql://todo:p%40ss%3Aw%2Frd%23%3F%25@h/db"
    parsed = parse_database_url(url)
    assert parsed.password == "p@ss:w/rd#?%"
    assert libpq(url)["password"] == "p@ss:w/rd#?%"
    parts, _ = asyncpg_parts(url)
    assert parts.password is not None
    assert "p@ss" not in parsed.asyncpg_dsn()  # re-encoded for asyncpg, which decodes it
    assert "p%40ss" not in parsed.redacted()
    assert "todo@h" in parsed.redacted()
    assert "p@ss" not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://todo:p@ss@h/db", "unencoded '@'"),
        ("postgresql://todo:pa/ss@h/db", "unencoded '/'"),
        ("postgresql://todo:pa:ss@h/db", "unencoded ':'"),
        ("postgresql://todo:pa#ss@h/db", "unencoded '#'"),
        ("postgresql://todo:pa?ss@h/db", "cannot be parsed"),
        ("postgresql://todo:secretpw@h", "names no database"),
        ("postgresql://todo:secretpw@h/", "names no database"),
        ("mysql://todo:secretpw@h/db", "scheme 'mysql' is not one of"),
        ("todo:secretpw@h/db", "must look like"),
        ("postgresql://todo:secretpw@h/db?sslmode=always", "sslmode must be one of"),
        ("postgresql://todo:secretpw@h/db?channel_binding=yes", "channel_binding must be"),
        ("postgresql://todo:secretpw@h/db?connection_limit=1", "unknown parameter"),
        ("postgresql://todo:secretpw@h/db?ssl=require&sslmode=disable", "disagree"),
        ("postgresql://todo:secretpw@h:99999/db", "cannot be parsed"),
        ("postgresql://todo:secretpw@/db", "names no host"),
    ],
)
def test_a_url_that_cannot_work_is_one_line_without_the_password(url, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_database_url(url)
    text = str(info.value)
    assert "\n" not in text
    for secret in ("secretpw", "p@ss", "pa/ss", "pa:ss", "pa#ss", "pa?ss", "ss@h"):
        assert secret not in text


def settings(**env: str) -> Settings:
    return Settings.from_mapping({"APP_ENV": "test", "BETTER_AUTH_SECRET": TEST_SECRET, **env})


def test_the_pooler_is_implied_by_neons_pooled_host_and_can_be_set():
    assert settings(DATABASE_URL=NEON).database_pooled
    assert not settings(DATABASE_URL=NEON, DATABASE_POOLER="none").database_pooled
    direct = "postgresql://u:p@db.internal/app"
    assert not settings(DATABASE_URL=direct).database_pooled
    assert settings(DATABASE_URL=direct, DATABASE_POOLER="transaction").database_pooled
    with pytest.raises(SettingsError, match="DATABASE_POOLER must be one of"):
        settings(DATABASE_URL=direct, DATABASE_POOLER="session")


def test_a_bad_url_stops_the_settings_with_one_line_naming_it():
    with pytest.raises(SettingsError, match=r"^DATABASE_URL the user or password") as info:
        settings(DATABASE_URL="postgresql://todo:hunter2@x/y@h/db")
    assert "hunter2" not in str(info.value)


def test_settings_never_show_the_url():
    assert "hunter2" not in repr(settings(DATABASE_URL="postgresql://todo:hunter2@h/db"))
