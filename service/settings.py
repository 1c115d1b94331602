"""One frozen settings object, read from the environment (and `.env`) once at
startup; a bad setting is a SettingsError whose one line names it (.env.example)."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from limits import RateLimitItem, parse_many

from service.auth.strength import guessable_secret_reason
from service.dburl import parse_database_url

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_SECRET_LENGTH = 32
RANDOM_KEY_RECIPE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
MIN_BCRYPT_ROUNDS = 10
DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/todo"

DEFAULT_SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# A parser takes the variable's name and its stripped, non-blank text.
Parser = Callable[[str, str], Any]
Rate = RateLimitItem | None  # None is `off`
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


class SettingsError(Exception):
    """A setting is missing or invalid; str(self) is the one-line reason."""


def get(variable: str, default: Any = None, parse: Parser | None = None, secret: bool = False):
    """A field read from `variable`: `default` when unset or blank, else parsed."""
    return field(repr=not secret, metadata={"read": (variable, default, parse)})


def _int(variable: str, default: int | None, low: int, high: int, kind: str = "a whole number"):
    return get(variable, default, _number(int, kind, low, high, ""))


def _float(variable: str, default: float, low: float, high: float):
    return get(variable, default, _number(float, "a number of seconds", low, high, " seconds"))


_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:.0f}s"


def _duration(variable: str, default: float, low: float, high: float):
    """Seconds, bare or with a unit: `300ms`, `1s`, `0.3`, `15m`, `24h`, `30d`."""

    def parse(variable: str, text: str) -> float:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?", text)
        if not match:
            raise SettingsError(
                f"{variable} must be a duration like 300ms, 1s, 0.5, 15m, 24h or 30d, not {text!r}"
            )
        value = float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
        if not low <= value <= high:
            raise SettingsError(
                f"{variable} must be between {_seconds(low)} and {_seconds(high)}, not {text!r}"
            )
        return value

    return get(variable, default, parse)


def _rate(variable: str, default: str):
    return get(variable, _parse_rate(variable, default), _parse_rate)


def _one_of(*options: str) -> Parser:
    def parse(variable: str, text: str) -> str:
        for option in options:
            if text.lower() == option.lower():
                return option
        raise SettingsError(f"{variable} must be one of {', '.join(options)}, not {text!r}")

    return parse


def _number(convert: Callable[[str], Any], kind: str, low: Any, high: Any, unit: str) -> Parser:
    def parse(variable: str, text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise SettingsError(f"{variable} must be {kind}, not {text!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{variable} must be between {low} and {high}{unit}, not {value}")
        return value

    return parse


def _parse_rate(variable: str, text: str) -> Rate:
    """One limit in the `limits` notation (`10/15minutes`), or `off`."""
    if text.lower() == "off":
        return None
    usage = f"{variable} must be N/PERIOD like 30/minute or 10/15minutes, or off; not {text!r}"
    try:
        items = parse_many(text)
    except ValueError:
        raise SettingsError(usage) from None
    # `10/0seconds` would parse as 10 per second: refuse a zero period.
    if len(items) != 1 or items[0].amount < 1 or re.search(r"/\s*0+\s*[A-Za-z]", text):
        raise SettingsError(usage)
    return items[0]


def _networks(variable: str, text: str) -> Networks:
    found = []
    for entry in filter(None, (entry.strip() for entry in text.split(","))):
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise SettingsError(
                f"{variable} must be comma-separated CIDRs like 10.0.0.0/8,fd00::/8, not {entry!r}"
            ) from None
    return tuple(found)


def _origins(variable: str, text: str) -> tuple[str, ...]:
    return tuple(_origin(variable, entry) for entry in text.split(",") if entry.strip())


def _origin(variable: str, text: str) -> str:
    origin = text.strip().rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise SettingsError(
            f"{variable} entries must be origins like https://app.example.com, not {origin!r}"
        )
    return origin


def _url(variable: str, text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{variable} must be an http(s) URL like https://app.example.com, not {text!r}"
        )
    return text


def _storage(variable: str, text: str) -> str:
    try:
        parts = urlsplit(text)
        has_host = bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number or out of range
        has_host = False
    if not text.startswith(("memory://", "redis://", "rediss://")) or (
        text != "memory://" and not has_host
    ):
        raise SettingsError(
            f"{variable} must be memory:// or a redis:// (rediss://) URL like redis://redis:6379/0"
        )
    return text


def _key_prefix(variable: str, text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", text):
        raise SettingsError(f"{variable} must be 1-64 of A-Z a-z 0-9 . _ : -, not {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Settings:
    """Each setting's variable, default and parser (.env.example says what they do)."""

    app_env: str = get("APP_ENV", "development", _one_of("development", "test", "production"))
    app_name: str = get("APP_NAME", "TODO API")
    database_url: str = get("DATABASE_URL", secret=True)
    database_pooled: bool = get("DATABASE_POOLER", None, _one_of("none", "transaction"))
    auth_secret: str = get("BETTER_AUTH_SECRET", secret=True)
    frontend_urls: tuple[str, ...] = get("FRONTEND_URL", ("http://localhost:3000",), _origins)
    public_url: str = get("PUBLIC_URL", "", _origin)
    jwt_ttl_seconds: int = _int("JWT_TTL_SECONDS", 604800, 60, 31_536_000)
    jwt_issuer: str = get("JWT_ISSUER", "todo-api")
    better_auth_url: str = get("BETTER_AUTH_URL", "", _url)
    better_auth_jwks_url: str = get("BETTER_AUTH_JWKS_URL", "", _url)
    better_auth_issuer: str = get("BETTER_AUTH_ISSUER", "")
    better_auth_audience: str = get("BETTER_AUTH_AUDIENCE", "")
    bcrypt_rounds: int = _int("BCRYPT_ROUNDS", 12, 4, 31)
    db_pool_min: int = _int("DB_POOL_MIN", 5, 0, 1000)
    db_pool_max: int = _int("DB_POOL_MAX", 20, 1, 1000)
    db_connect_timeout: float = _float("DB_CONNECT_TIMEOUT", 3.0, 0.1, 60)
    db_statement_timeout: float = _float("DB_STATEMENT_TIMEOUT", 5.0, 0.1, 600)
    db_max_per_user: int = _int("DB_MAX_PER_USER", None, 1, 1000)
    max_tasks_per_user: int = _int("MAX_TASKS_PER_USER", 10_000, 1, 1_000_000_000)
    search_timeout: float = _duration("SEARCH_TIMEOUT", 0.3, 0.001, 600)
    search_concurrency: int = _int("SEARCH_CONCURRENCY", 1, 1, 1000)
    idempotency_ttl: float = _duration("IDEMPOTENCY_TTL", 86400.0, 60, 30 * 86400)
    changes_retention: float = _duration("CHANGES_RETENTION", 30 * 86400.0, 3600, 365 * 86400)
    events_per_user: int = _int("EVENTS_PER_USER", 5, 1, 100)
    events_per_process: int = _int("EVENTS_PER_PROCESS", 1000, 1, 100_000)
    events_heartbeat: float = _duration("EVENTS_HEARTBEAT", 15.0, 0.05, 300)
    log_level: str = get("LOG_LEVEL", "INFO", _one_of(*LOG_LEVELS))
    log_format: str = get("LOG_FORMAT", "json", _one_of("json", "text"))
    metrics_port: int | None = _int("METRICS_PORT", None, 1, 65535, "a port number")
    sql_dir: Path = get("SQL_DIR", DEFAULT_SQL_DIR, lambda _, text: Path(text))
    shutdown_timeout: float = _float("SHUTDOWN_TIMEOUT", 8.0, 0, 300)
    client_header_timeout: float = _float("CLIENT_HEADER_TIMEOUT", 10.0, 0.1, 300)
    client_body_timeout: float = _float("CLIENT_BODY_TIMEOUT", 10.0, 0.1, 300)
    keepalive_timeout: float = _float("KEEPALIVE_TIMEOUT", 75.0, 0.1, 3600)
    rate_limit_signin_failures: Rate = _rate("RATE_LIMIT_SIGNIN_FAILURES", "10/15minutes")
    rate_limit_auth_per_ip: Rate = _rate("RATE_LIMIT_AUTH_PER_IP", "30/minute")
    rate_limit_auth_per_ipv6_48: Rate = _rate("RATE_LIMIT_AUTH_PER_IPV6_48", "120/minute")
    rate_limit_per_user: Rate = _rate("RATE_LIMIT_PER_USER", "1200/minute")
    rate_limit_storage: str = get("RATE_LIMIT_STORAGE", "memory://", _storage, secret=True)
    rate_limit_key_prefix: str = get("RATE_LIMIT_KEY_PREFIX", "todo-api", _key_prefix)
    trusted_proxies: Networks = get("TRUSTED_PROXIES", (), _networks)
    filled_in: tuple[str, ...]  # made up by the service (development/test), for a warning
    # Why BETTER_AUTH_SECRET is guessable, in development (production refuses).
    weak_secret: str | None

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def queries_dir(self) -> Path:
        return self.sql_dir / "queries"

    @property
    def migrations_dir(self) -> Path:
        return self.sql_dir / "migrations"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | None = ".env"
    ) -> Settings:
        """`environ` (default os.environ) laid over the `.env` file, when one exists."""
        env: dict[str, str] = {}
        if dotenv_path and Path(dotenv_path).is_file():
            env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env.update(os.environ if environ is None else environ)
        return cls.from_mapping(env)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        values = {f.name: _read(env, *f.metadata["read"]) for f in fields(cls) if f.metadata}
        _fill_in(values)
        _better_auth(values)
        _check_together(values)
        return cls(**values)

    def warn_filled_in(self, logger: logging.Logger) -> None:
        """The loud warning for settings the service made up, or production would refuse."""
        if self.weak_secret:
            logger.warning(
                "BETTER_AUTH_SECRET is guessable (%s): production refuses it; make one with %s",
                self.weak_secret,
                RANDOM_KEY_RECIPE,
            )
        if "BETTER_AUTH_SECRET" in self.filled_in:
            logger.warning(
                "BETTER_AUTH_SECRET is not set: using a random secret for this run "
                "(APP_ENV=%s). Tokens stop working when the service restarts. "
                "Set it in .env; production refuses to start without it.",
                self.app_env,
            )
        if "DATABASE_URL" in self.filled_in:
            logger.warning(
                "DATABASE_URL is not set: using the local default %s (APP_ENV=%s).",
                parse_database_url(self.database_url).redacted(),
                self.app_env,
            )


def _read(env: Mapping[str, str], variable: str, default: Any, parse: Parser | None) -> Any:
    text = (env.get(variable) or "").strip()
    if not text:
        return default
    return parse(variable, text) if parse else text


def _fill_in(values: dict[str, Any]) -> None:
    """The database and the secret: required in production, made up elsewhere."""
    production = values["app_env"] == "production"
    filled = []
    if values["database_url"] is None:
        if production:
            raise SettingsError("DATABASE_URL is required when APP_ENV=production")
        values["database_url"] = DEV_DATABASE_URL
        filled.append("DATABASE_URL")
    try:
        pooler_hint = parse_database_url(values["database_url"]).pooler_hint
    except ValueError as exc:
        raise SettingsError(f"DATABASE_URL {exc}") from None
    pooler = values["database_pooled"]
    values["database_pooled"] = pooler == "transaction" or (pooler is None and pooler_hint)

    secret = values["auth_secret"]
    if secret is None:
        if production:
            raise SettingsError(
                "BETTER_AUTH_SECRET is required when APP_ENV=production "
                f"(at least {MIN_SECRET_LENGTH} characters)"
            )
        values["auth_secret"] = secrets.token_urlsafe(48)
        filled.append("BETTER_AUTH_SECRET")
    elif len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(f"BETTER_AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    # Development only warns (a team's shared fill-in); tests never ask.
    given = secret is not None and values["app_env"] != "test"
    weak = values["weak_secret"] = guessable_secret_reason(secret) if given else None
    if weak and production:
        raise SettingsError(
            f"BETTER_AUTH_SECRET is guessable ({weak}); use a random one, e.g. {RANDOM_KEY_RECIPE}"
        )
    values["filled_in"] = tuple(filled)


def _better_auth(values: dict[str, Any]) -> None:
    url = values["better_auth_url"] = values["better_auth_url"].rstrip("/")
    for variable in ("BETTER_AUTH_JWKS_URL", "BETTER_AUTH_ISSUER", "BETTER_AUTH_AUDIENCE"):
        if values[variable.lower()] and not url:
            raise SettingsError(f"{variable} needs BETTER_AUTH_URL (the Better Auth server)")
    if url:
        values["better_auth_jwks_url"] = values["better_auth_jwks_url"] or f"{url}/api/auth/jwks"
    # Without a trailing slash; the verifier accepts both spellings.
    for key in ("better_auth_issuer", "better_auth_audience"):
        values[key] = (values[key] or url).rstrip("/")


def _check_together(values: dict[str, Any]) -> None:
    if values["bcrypt_rounds"] < MIN_BCRYPT_ROUNDS and values["app_env"] != "test":
        raise SettingsError(
            f"BCRYPT_ROUNDS below {MIN_BCRYPT_ROUNDS} is only allowed when APP_ENV=test"
        )
    pool_max = values["db_pool_max"]
    if values["db_pool_min"] > pool_max:
        raise SettingsError("DB_POOL_MIN must not be greater than DB_POOL_MAX")
    if values["db_max_per_user"] is None:
        values["db_max_per_user"] = max(1, pool_max // 4)
    elif values["db_max_per_user"] > pool_max:
        raise SettingsError(f"DB_MAX_PER_USER must not be greater than DB_POOL_MAX ({pool_max})")
    # So a search past it is the search's own 422, never the database's 503.
    if values["search_timeout"] >= values["db_statement_timeout"]:
        raise SettingsError(
            "SEARCH_TIMEOUT must be shorter than DB_STATEMENT_TIMEOUT "
            f"({values['db_statement_timeout']} s)"
        )
    sql_dir = values["sql_dir"]
    if not (sql_dir / "queries").is_dir() or not (sql_dir / "migrations").is_dir():
        raise SettingsError(f"SQL_DIR {str(sql_dir)!r} must hold queries/ and migrations/")
