from __future__ import annotations

import base64
import logging
import os
import secrets
import uuid

import pytest

from service.settings import DEV_DATABASE_URL, Settings, SettingsError
from tests.conftest import TEST_SECRET
from tests.launcher import todo_api

PROD = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://app:pw@db:5432/todo?sslmode=require",
    "BETTER_AUTH_SECRET": TEST_SECRET,
}


def test_defaults_follow_the_contract():
    s = Settings.from_mapping(PROD)
    assert s.app_name == "TODO API"
    assert s.frontend_urls == ("http://localhost:3000",)
    assert s.jwt_ttl_seconds == 604800
    assert s.bcrypt_rounds == 12
    assert (s.db_pool_min, s.db_pool_max) == (5, 20)
    assert (s.log_level, s.log_format) == ("INFO", "json")
    assert (s.client_header_timeout, s.client_body_timeout, s.keepalive_timeout) == (10, 10, 75)
    assert s.metrics_port is None
    assert s.filled_in == ()


def test_settings_are_frozen():
    s = Settings.from_mapping(PROD)
    with pytest.raises(AttributeError):
        s.app_name = "other"  # type: ignore[misc]


def test_secret_is_not_in_repr():
    assert TEST_SECRET not in repr(Settings.from_mapping(PROD))


@pytest.mark.parametrize("missing", ["DATABASE_URL", "BETTER_AUTH_SECRET"])
def test_production_refuses_to_start_without_a_required_setting(missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.from_mapping(env)


def test_production_treats_a_blank_secret_as_missing():
    with pytest.raises(SettingsError, match="BETTER_AUTH_SECRET is required"):
        Settings.from_mapping({**PROD, "BETTER_AUTH_SECRET": "   "})


@pytest.mark.parametrize("env", ["production", "development", "test"])
def test_a_short_secret_is_refused_everywhere(env):
    with pytest.raises(SettingsError, match="BETTER_AUTH_SECRET must be at least 32"):
        Settings.from_mapping({**PROD, "APP_ENV": env, "BETTER_AUTH_SECRET": "x" * 31})


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("a" * 32, "too few distinct characters"),
        ("0" * 64, "too few distinct characters"),
        ("abcabc" * 6, "too few distinct characters"),
        ("0123456789" * 4, "a short pattern repeated"),
        ("Xy7#kP2!" * 5, "a short pattern repeated"),
        ("my-super-secret-key-for-jwt-signing", "low estimated entropy"),
        ("correct horse battery staple is my secret key", "low estimated entropy"),
        ("test-secret-that-is-long-enough-for-hs256-0123456789", "low estimated entropy"),
        ("qwertyuiopasdfghjklzxcvbnm123456", "low estimated entropy"),
        ("changeme-changeme-changeme-changeme", "a short pattern repeated"),
        ("better-auth-secret-12345678901234567890", "low estimated entropy"),
    ],
)
def test_production_refuses_a_guessable_secret_naming_it(secret, why):
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping({**PROD, "BETTER_AUTH_SECRET": secret})
    message = str(info.value)
    assert message.startswith("BETTER_AUTH_SECRET is guessable")
    assert why in message
    assert secret not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_hex(32),
        lambda: base64.b64encode(os.urandom(32)).decode(),  # openssl rand -base64 32
        lambda: uuid.uuid4().hex + uuid.uuid4().hex,
    ],
)
def test_production_accepts_random_secrets(make):
    for _ in range(20):
        secret = make()
        assert Settings.from_mapping({**PROD, "BETTER_AUTH_SECRET": secret}).auth_secret == secret


def test_development_and_test_keep_a_guessable_secret_and_development_warns(caplog):
    weak = {"DATABASE_URL": PROD["DATABASE_URL"], "BETTER_AUTH_SECRET": "a" * 32}
    assert Settings.from_mapping({**weak, "APP_ENV": "test"}).weak_secret is None
    dev = Settings.from_mapping({**weak, "APP_ENV": "development"})
    assert dev.auth_secret == "a" * 32
    with caplog.at_level(logging.WARNING):
        dev.warn_filled_in(logging.getLogger("t"))
    assert "BETTER_AUTH_SECRET is guessable" in caplog.text
    assert "a" * 32 not in caplog.text


def test_development_fills_in_what_is_missing():
    s = Settings.from_mapping({})
    assert s.app_env == "development"
    assert s.database_url == DEV_DATABASE_URL
    assert len(s.auth_secret) >= 32
    assert set(s.filled_in) == {"DATABASE_URL", "BETTER_AUTH_SECRET"}
    # A new secret each time: nothing guessable is ever baked in.
    assert Settings.from_mapping({}).auth_secret != s.auth_secret


def test_development_warns_loudly_about_filled_in_settings(caplog):
    s = Settings.from_mapping({})
    with caplog.at_level(logging.WARNING):
        s.warn_filled_in(logging.getLogger("t"))
    text = caplog.text
    assert "BETTER_AUTH_SECRET is not set" in text
    assert "DATABASE_URL is not set" in text
    assert s.auth_secret not in text


def test_bcrypt_rounds_below_ten_only_in_test():
    with pytest.raises(SettingsError, match="BCRYPT_ROUNDS"):
        Settings.from_mapping({**PROD, "BCRYPT_ROUNDS": "9"})
    with pytest.raises(SettingsError, match="BCRYPT_ROUNDS"):
        Settings.from_mapping({"APP_ENV": "development", "BCRYPT_ROUNDS": "4"})
    assert Settings.from_mapping({"APP_ENV": "test", "BCRYPT_ROUNDS": "4"}).bcrypt_rounds == 4


# Each answered with a SettingsError naming it (test_a_bad_setting_names_itself,
# with those of issues 13 and 25 below).
BAD_SETTINGS = [
    ("APP_ENV", "staging", "APP_ENV must be one of"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL scheme .mysql. is not one of"),
    ("DATABASE_URL", "postgresql://host", "DATABASE_URL names no database"),
    ("FRONTEND_URL", "localhost:3000", "FRONTEND_URL"),
    ("FRONTEND_URL", "https://app.example.com/path", "FRONTEND_URL"),
    ("JWT_TTL_SECONDS", "soon", "JWT_TTL_SECONDS must be a whole number"),
    ("JWT_TTL_SECONDS", "0", "JWT_TTL_SECONDS must be between"),
    ("DB_POOL_MAX", "0", "DB_POOL_MAX must be between"),
    ("DB_POOL_MIN", "30", "DB_POOL_MIN must not be greater"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT"),
    ("METRICS_PORT", "metrics", "METRICS_PORT must be a port number"),
    ("METRICS_PORT", "70000", "METRICS_PORT must be between 1 and 65535"),
    ("DB_STATEMENT_TIMEOUT", "-1", "DB_STATEMENT_TIMEOUT"),
    ("SQL_DIR", "/nonexistent", "SQL_DIR"),
    ("CLIENT_HEADER_TIMEOUT", "0", "CLIENT_HEADER_TIMEOUT must be between"),
    ("CLIENT_BODY_TIMEOUT", "soon", "CLIENT_BODY_TIMEOUT must be a number"),
    ("KEEPALIVE_TIMEOUT", "7200", "KEEPALIVE_TIMEOUT must be between"),
]


# --- database protection (issue 13) ---------------------------------------------


@pytest.mark.parametrize(("pool_max", "share"), [("20", 5), ("2", 1), ("3", 1), ("100", 25)])
def test_a_users_share_of_the_pool_defaults_to_a_quarter_and_at_least_one(pool_max, share):
    s = Settings.from_mapping({**PROD, "DB_POOL_MIN": "1", "DB_POOL_MAX": pool_max})
    assert s.db_max_per_user == share
    assert s.max_tasks_per_user == 10_000


def test_the_database_limits_are_read():
    s = Settings.from_mapping({**PROD, "DB_MAX_PER_USER": " 20 ", "MAX_TASKS_PER_USER": "50"})
    assert (s.db_max_per_user, s.max_tasks_per_user) == (20, 50)


BAD_DATABASE_LIMITS = [
    ("DB_MAX_PER_USER", "0", "DB_MAX_PER_USER must be between 1 and"),
    ("DB_MAX_PER_USER", "half", "DB_MAX_PER_USER must be a whole number"),
    ("DB_MAX_PER_USER", "21", r"DB_MAX_PER_USER must not be greater than DB_POOL_MAX \(20\)"),
    ("MAX_TASKS_PER_USER", "0", "MAX_TASKS_PER_USER must be between 1 and"),
    ("MAX_TASKS_PER_USER", "10k", "MAX_TASKS_PER_USER must be a whole number"),
    ("MAX_TASKS_PER_USER", "3000000000", "MAX_TASKS_PER_USER must be between"),
]


# --- bounded searches (issue 25) ------------------------------------------------


def test_searches_default_to_the_contract():
    s = Settings.from_mapping(PROD)
    assert (s.search_timeout, s.search_concurrency) == (0.3, 1)


@pytest.mark.parametrize(
    ("value", "seconds"), [("300ms", 0.3), ("1s", 1.0), ("2", 2.0), ("0.5", 0.5), (" 50 ms ", 0.05)]
)
def test_search_timeout_is_a_duration(value, seconds):
    s = Settings.from_mapping({**PROD, "SEARCH_TIMEOUT": value, "SEARCH_CONCURRENCY": "4"})
    assert (s.search_timeout, s.search_concurrency) == (seconds, 4)


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 86400.0), ("15m", 900.0), ("24h", 86400.0), ("30d", 2592000.0)]
)
def test_idempotency_ttl_is_a_duration_in_minutes_hours_or_days(value, seconds):
    given = {} if value is None else {"IDEMPOTENCY_TTL": value}
    assert Settings.from_mapping({**PROD, **given}).idempotency_ttl == seconds


BAD_SEARCH_SETTINGS = [
    ("IDEMPOTENCY_TTL", "59s", "IDEMPOTENCY_TTL must be between"),
    ("IDEMPOTENCY_TTL", "31d", "IDEMPOTENCY_TTL must be between"),
    ("IDEMPOTENCY_TTL", "1w", "IDEMPOTENCY_TTL must be a duration like"),
    ("SEARCH_TIMEOUT", "fast", "SEARCH_TIMEOUT must be a duration like 300ms"),
    ("SEARCH_TIMEOUT", "300 min", "SEARCH_TIMEOUT must be a duration"),
    ("SEARCH_TIMEOUT", "-1s", "SEARCH_TIMEOUT must be a duration"),
    ("SEARCH_TIMEOUT", "0ms", "SEARCH_TIMEOUT must be between"),
    ("SEARCH_TIMEOUT", "5s", r"must be shorter than DB_STATEMENT_TIMEOUT \(5.0 s\)"),
    ("SEARCH_CONCURRENCY", "0", "SEARCH_CONCURRENCY must be between 1 and"),
    ("SEARCH_CONCURRENCY", "one", "SEARCH_CONCURRENCY must be a whole number"),
]


@pytest.mark.parametrize(
    ("name", "value", "message"), BAD_SETTINGS + BAD_DATABASE_LIMITS + BAD_SEARCH_SETTINGS
)
def test_a_bad_setting_names_itself(name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping({**PROD, name: value})


def test_the_command_refuses_a_share_above_the_pool_in_one_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "test",
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "DB_MAX_PER_USER": "8",
    }
    result = todo_api("serve", "--port", "1", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "DB_MAX_PER_USER must not be greater than DB_POOL_MAX (4)" in line


def test_a_bad_database_url_is_not_echoed():
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping({**PROD, "DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(info.value)


def test_frontend_url_takes_several_origins():
    s = Settings.from_mapping(
        {**PROD, "FRONTEND_URL": "https://a.example.com, http://localhost:3000/"}
    )
    assert s.frontend_urls == ("https://a.example.com", "http://localhost:3000")


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("APP_NAME=From dotenv\nJWT_TTL_SECONDS=3600\nAPP_ENV=production\n")
    s = Settings.from_env(
        {"APP_ENV": "test", "APP_NAME": "From env", "BETTER_AUTH_SECRET": TEST_SECRET},
        dotenv_path=str(dotenv),
    )
    assert s.app_name == "From env"
    assert s.app_env == "test"
    assert s.jwt_ttl_seconds == 3600


def test_the_command_refuses_production_without_a_secret_in_one_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://u@127.0.0.1:5432/todo",
    }
    result = todo_api("serve", "--port", "1", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "BETTER_AUTH_SECRET" in lines[0]
    assert result.stdout == ""


def test_the_command_refuses_production_with_a_guessable_secret_in_one_line(tmp_path):
    # The security review's finding: 32 x "a" started production.
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://u@127.0.0.1:5432/todo",
        "BETTER_AUTH_SECRET": "a" * 32,
    }
    result = todo_api("serve", "--port", "1", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BETTER_AUTH_SECRET is guessable" in lines[0]
    assert "a" * 32 not in lines[0]
    assert result.stdout == ""


def test_env_example_documents_every_setting():
    import re

    from tests.conftest import REPO_ROOT

    source = (REPO_ROOT / "service" / "settings.py").read_text()
    readers = "get|_int|_float|_duration|_rate|_networks"
    read = set(re.findall(rf'(?:{readers})\((?:env, )?"([A-Z][A-Z0-9_]+)"', source))
    read.add("PROMETHEUS_MULTIPROC_DIR")  # read by the supervisor and prometheus-client
    example = (REPO_ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M))
    assert read <= documented, read - documented
    assert {"DATABASE_URL", "BETTER_AUTH_SECRET", "APP_ENV", "BCRYPT_ROUNDS"} <= read
    assert {"RATE_LIMIT_PER_USER", "TRUSTED_PROXIES", "RATE_LIMIT_STORAGE"} <= read
    assert {"RATE_LIMIT_AUTH_PER_IPV6_48", "SEARCH_TIMEOUT", "METRICS_PORT"} <= read


# --- Rate limits -------------------------------------------------------------


def test_rate_limits_default_to_the_contract():
    s = Settings.from_mapping(PROD)
    assert (s.rate_limit_signin_failures.amount, s.rate_limit_signin_failures.get_expiry()) == (
        10,
        900,
    )
    assert (s.rate_limit_auth_per_ip.amount, s.rate_limit_auth_per_ip.get_expiry()) == (30, 60)
    site = s.rate_limit_auth_per_ipv6_48
    assert (site.amount, site.get_expiry()) == (120, 60)
    assert (s.rate_limit_per_user.amount, s.rate_limit_per_user.get_expiry()) == (1200, 60)
    assert s.rate_limit_storage == "memory://"
    assert s.trusted_proxies == ()


@pytest.mark.parametrize(
    ("value", "amount", "seconds"),
    [
        ("10/15minutes", 10, 900),
        ("30/minute", 30, 60),
        ("3/2seconds", 3, 2),
        ("5 per hour", 5, 3600),
        (" 100/day ", 100, 86400),
    ],
)
def test_a_rate_limit_is_n_per_period(value, amount, seconds):
    item = Settings.from_mapping({**PROD, "RATE_LIMIT_PER_USER": value}).rate_limit_per_user
    assert (item.amount, item.get_expiry()) == (amount, seconds)


RATE_LIMITS = [
    "RATE_LIMIT_SIGNIN_FAILURES",
    "RATE_LIMIT_AUTH_PER_IP",
    "RATE_LIMIT_AUTH_PER_IPV6_48",
    "RATE_LIMIT_PER_USER",
]


@pytest.mark.parametrize("name", RATE_LIMITS)
def test_off_turns_one_rate_limit_off(name):
    s = Settings.from_mapping({**PROD, name: "OFF"})
    limits = (
        s.rate_limit_signin_failures,
        s.rate_limit_auth_per_ip,
        s.rate_limit_auth_per_ipv6_48,
        s.rate_limit_per_user,
    )
    assert sum(item is None for item in limits) == 1


@pytest.mark.parametrize(
    "value", ["30", "minute", "0/minute", "10/0seconds", "5/day;10/hour", "10/fortnight", "-1/h"]
)
@pytest.mark.parametrize("name", RATE_LIMITS)
def test_a_bad_rate_limit_names_itself(name, value):
    with pytest.raises(SettingsError, match=f"^{name} must be N/PERIOD"):
        Settings.from_mapping({**PROD, name: value})


def test_trusted_proxies_are_cidrs():
    s = Settings.from_mapping({**PROD, "TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8,192.0.2.7"})
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
        ("RATE_LIMIT_STORAGE", "memcached://cache:11211"),
        ("RATE_LIMIT_STORAGE", "redis://"),
        ("RATE_LIMIT_STORAGE", "redis://redis:notaport/0"),
        ("RATE_LIMIT_KEY_PREFIX", "has space"),
    ],
)
def test_a_bad_limit_setting_names_itself_in_one_line(name, value):
    with pytest.raises(SettingsError, match=f"^{name} ") as info:
        Settings.from_mapping({**PROD, name: value})
    assert "\n" not in str(info.value)


def test_a_redis_storage_url_is_kept_out_of_repr():
    url = "redis://:hunter2@redis:6379/0"
    s = Settings.from_mapping({**PROD, "RATE_LIMIT_STORAGE": url})
    assert s.rate_limit_storage == url
    assert "hunter2" not in repr(s)


# --- Better Auth -----------------------------------------------------------


def test_better_auth_is_off_unless_its_url_is_set():
    s = Settings.from_mapping(PROD)
    assert s.better_auth_url == s.better_auth_jwks_url == ""


def test_better_auth_url_gives_the_key_set_issuer_and_audience():
    s = Settings.from_mapping({**PROD, "BETTER_AUTH_URL": "https://app.example.com/"})
    assert s.better_auth_url == "https://app.example.com"
    assert s.better_auth_jwks_url == "https://app.example.com/api/auth/jwks"
    assert s.better_auth_issuer == s.better_auth_audience == "https://app.example.com"


def test_better_auth_overrides():
    s = Settings.from_mapping(
        {
            **PROD,
            "BETTER_AUTH_URL": "http://frontend:3000",
            "BETTER_AUTH_JWKS_URL": "http://frontend:3000/auth/keys",
            "BETTER_AUTH_ISSUER": "https://app.example.com",
            "BETTER_AUTH_AUDIENCE": "https://api.example.com",
        }
    )
    assert s.better_auth_jwks_url == "http://frontend:3000/auth/keys"
    assert s.better_auth_issuer == "https://app.example.com"
    assert s.better_auth_audience == "https://api.example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BETTER_AUTH_URL": "localhost:3000"}, "BETTER_AUTH_URL must be an http"),
        ({"BETTER_AUTH_URL": "ftp://app.example.com"}, "BETTER_AUTH_URL must be an http"),
        (
            {"BETTER_AUTH_URL": "http://a.example", "BETTER_AUTH_JWKS_URL": "keys.json"},
            "BETTER_AUTH_JWKS_URL must be an http",
        ),
        ({"BETTER_AUTH_ISSUER": "https://app.example.com"}, "BETTER_AUTH_ISSUER needs"),
        ({"BETTER_AUTH_JWKS_URL": "https://a.example/jwks"}, "BETTER_AUTH_JWKS_URL needs"),
    ],
)
def test_bad_better_auth_settings_stop_the_start(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping({**PROD, **env})
