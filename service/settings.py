"""One frozen settings object, read from the environment (and `.env`) and
validated once at startup. A bad setting raises SettingsError with one line
that names it; the command line prints that line and exits."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from limits import RateLimitItem, parse_many

from service.auth.strength import guessable_secret_reason
from service.dburl import parse_database_url

ENVIRONMENTS = ("development", "test", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
POOLERS = ("none", "transaction")
MIN_SECRET_LENGTH = 32
RANDOM_KEY_RECIPE = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
MIN_BCRYPT_ROUNDS = 10
DEV_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/todo"
RATE_LIMIT_STORAGES = ("memory://", "redis://", "rediss://")
_KEY_PREFIX = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# The repository's sql/ folder; SQL_DIR overrides it (the container sets it).
DEFAULT_SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class SettingsError(Exception):
    """A setting is missing or invalid; str(self) is the one-line reason."""


@dataclass(frozen=True, slots=True)
class Settings:
    app_env: str = "development"
    app_name: str = "TODO API"
    database_url: str = field(default=DEV_DATABASE_URL, repr=False)
    # A transaction-mode pooler (PgBouncer, Neon's -pooler, Supavisor) sits in
    # front of PostgreSQL: DATABASE_POOLER=transaction, or implied by the URL.
    database_pooled: bool = False
    auth_secret: str = field(default="", repr=False)
    frontend_urls: tuple[str, ...] = ("http://localhost:3000",)
    # The service's public origin, for absolute URLs (Location, the listing's
    # Link); empty means "from the request's Host".
    public_url: str = ""
    jwt_ttl_seconds: int = 604800
    jwt_issuer: str = "todo-api"
    # The frontend's Better Auth server (empty: its tokens are not accepted)
    # and where its keys, `iss` and `aud` come from.
    better_auth_url: str = ""
    better_auth_jwks_url: str = ""
    better_auth_issuer: str = ""
    better_auth_audience: str = ""
    bcrypt_rounds: int = 12
    db_pool_min: int = 5
    db_pool_max: int = 20
    db_connect_timeout: float = 3.0
    db_statement_timeout: float = 5.0
    # Issue 13's database protection: pool connections one user may hold at
    # once (per process, like the pool), and the tasks one user may own.
    db_max_per_user: int = 5
    max_tasks_per_user: int = 10_000
    # Issue 25's bounded searches (API.md "Limits"): a `q` listing's own
    # statement timeout, and how many run at once in a process.
    search_timeout: float = 0.3
    search_concurrency: int = 1
    log_level: str = "INFO"
    log_format: str = "json"
    # /metrics on a listener of its own (None: on the API port outside
    # production, nowhere in production).
    metrics_port: int | None = None
    sql_dir: Path = DEFAULT_SQL_DIR
    shutdown_timeout: float = 8.0
    # Slow clients: a request's head must arrive within client_header_timeout
    # of the connection opening or of its first byte, its body within
    # client_body_timeout; an idle kept-alive connection closes after
    # keepalive_timeout (longer than a load balancer's idle timeout).
    client_header_timeout: float = 10.0
    client_body_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    # Rate limits (API.md "Limits"); None is `off`.
    rate_limit_signin_failures: RateLimitItem | None = parse_many("10/15minutes")[0]
    rate_limit_auth_per_ip: RateLimitItem | None = parse_many("30/minute")[0]
    # Above the per-address (IPv6: per-/64) limit, one for each IPv6 /48.
    rate_limit_auth_per_ipv6_48: RateLimitItem | None = parse_many("120/minute")[0]
    rate_limit_per_user: RateLimitItem | None = parse_many("1200/minute")[0]
    rate_limit_storage: str = field(default="memory://", repr=False)
    rate_limit_key_prefix: str = "todo-api"
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Settings the service filled in by itself (development/test only), for
    # the loud warning at startup.
    filled_in: tuple[str, ...] = ()
    # Why BETTER_AUTH_SECRET is guessable, in development (production refuses).
    weak_secret: str | None = None

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
        """Read settings from `environ` (default os.environ) laid over the
        `.env` file, when one exists. Real environment variables win."""
        env: dict[str, str] = {}
        if dotenv_path and Path(dotenv_path).is_file():
            env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        env.update(os.environ if environ is None else environ)
        return cls.from_mapping(env)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None or value.strip() == "":
                return None
            return value.strip()

        filled: list[str] = []
        app_env = (get("APP_ENV") or "development").lower()
        if app_env not in ENVIRONMENTS:
            raise SettingsError(
                f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {app_env!r}"
            )
        production = app_env == "production"

        database_url = get("DATABASE_URL")
        if database_url is None:
            if production:
                raise SettingsError("DATABASE_URL is required when APP_ENV=production")
            database_url = DEV_DATABASE_URL
            filled.append("DATABASE_URL")
        try:
            parsed_url = parse_database_url(database_url)
        except ValueError as exc:
            raise SettingsError(f"DATABASE_URL {exc}") from None
        pooler = (get("DATABASE_POOLER") or "").lower()
        if pooler and pooler not in POOLERS:
            raise SettingsError(f"DATABASE_POOLER must be one of {', '.join(POOLERS)}")

        secret = get("BETTER_AUTH_SECRET")
        if secret is None:
            if production:
                raise SettingsError(
                    "BETTER_AUTH_SECRET is required when APP_ENV=production "
                    f"(at least {MIN_SECRET_LENGTH} characters)"
                )
            secret = secrets.token_urlsafe(48)
            filled.append("BETTER_AUTH_SECRET")
        elif len(secret) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"BETTER_AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters"
            )
        # Development only warns (a team's shared fill-in); tests never ask.
        given = "BETTER_AUTH_SECRET" not in filled and app_env != "test"
        weak_secret = guessable_secret_reason(secret) if given else None
        if weak_secret and production:
            raise SettingsError(
                f"BETTER_AUTH_SECRET is guessable ({weak_secret}); use a random one, "
                f"e.g. {RANDOM_KEY_RECIPE}"
            )

        origins = tuple(
            o.strip().rstrip("/")
            for o in (get("FRONTEND_URL") or "http://localhost:3000").split(",")
            if o.strip()
        )
        for origin in origins:
            _check_origin(origin)

        public_url = (get("PUBLIC_URL") or "").rstrip("/")
        if public_url:
            _check_origin(public_url, "PUBLIC_URL")

        better_auth_url = (get("BETTER_AUTH_URL") or "").rstrip("/")
        if better_auth_url:
            _check_url(better_auth_url, "BETTER_AUTH_URL")
        for name in ("BETTER_AUTH_JWKS_URL", "BETTER_AUTH_ISSUER", "BETTER_AUTH_AUDIENCE"):
            if get(name) and not better_auth_url:
                raise SettingsError(f"{name} needs BETTER_AUTH_URL (the Better Auth server)")
        jwks_url = get("BETTER_AUTH_JWKS_URL") or (
            f"{better_auth_url}/api/auth/jwks" if better_auth_url else ""
        )
        if jwks_url:
            _check_url(jwks_url, "BETTER_AUTH_JWKS_URL")

        bcrypt_rounds = _int(env, "BCRYPT_ROUNDS", 12, low=4, high=31)
        if bcrypt_rounds < MIN_BCRYPT_ROUNDS and app_env != "test":
            raise SettingsError(
                f"BCRYPT_ROUNDS below {MIN_BCRYPT_ROUNDS} is only allowed when APP_ENV=test"
            )

        pool_min = _int(env, "DB_POOL_MIN", 5, low=0, high=1000)
        pool_max = _int(env, "DB_POOL_MAX", 20, low=1, high=1000)
        if pool_min > pool_max:
            raise SettingsError("DB_POOL_MIN must not be greater than DB_POOL_MAX")

        # Database protection (issue 13). A share above the pool could never
        # bind, so it is refused rather than silently clamped.
        max_per_user = _int(env, "DB_MAX_PER_USER", max(1, pool_max // 4), low=1, high=1000)
        if max_per_user > pool_max:
            raise SettingsError(
                f"DB_MAX_PER_USER must not be greater than DB_POOL_MAX ({pool_max})"
            )
        max_tasks = _int(env, "MAX_TASKS_PER_USER", 10_000, low=1, high=1_000_000_000)
        statement_timeout = _float(env, "DB_STATEMENT_TIMEOUT", 5.0, low=0.1, high=600)
        # Below the statement timeout, so a search past it is the search's
        # own 422, never the database timeout's 503.
        search_timeout = _duration(env, "SEARCH_TIMEOUT", 0.3, low=0.001, high=600)
        if search_timeout >= statement_timeout:
            raise SettingsError(
                f"SEARCH_TIMEOUT must be shorter than DB_STATEMENT_TIMEOUT ({statement_timeout} s)"
            )

        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        log_format = (get("LOG_FORMAT") or "json").lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")

        sql_dir = Path(get("SQL_DIR") or DEFAULT_SQL_DIR)
        if not (sql_dir / "queries").is_dir() or not (sql_dir / "migrations").is_dir():
            raise SettingsError(f"SQL_DIR {str(sql_dir)!r} must hold queries/ and migrations/")

        rate_limit_storage = get("RATE_LIMIT_STORAGE") or "memory://"
        if not rate_limit_storage.startswith(RATE_LIMIT_STORAGES) or (
            rate_limit_storage != "memory://" and not _has_host(rate_limit_storage)
        ):
            raise SettingsError(
                "RATE_LIMIT_STORAGE must be memory:// or a redis:// (rediss://) URL "
                "like redis://redis:6379/0"
            )
        key_prefix = get("RATE_LIMIT_KEY_PREFIX") or "todo-api"
        if not _KEY_PREFIX.match(key_prefix):
            raise SettingsError(
                f"RATE_LIMIT_KEY_PREFIX must be 1-64 of A-Z a-z 0-9 . _ : -, not {key_prefix!r}"
            )

        return cls(
            app_env=app_env,
            app_name=get("APP_NAME") or "TODO API",
            database_url=database_url,
            database_pooled=pooler == "transaction" or (not pooler and parsed_url.pooler_hint),
            auth_secret=secret,
            frontend_urls=origins,
            public_url=public_url,
            jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 604800, low=60, high=31_536_000),
            jwt_issuer=get("JWT_ISSUER") or "todo-api",
            better_auth_url=better_auth_url,
            better_auth_jwks_url=jwks_url,
            # Without a trailing slash; the verifier accepts both spellings.
            better_auth_issuer=(get("BETTER_AUTH_ISSUER") or better_auth_url).rstrip("/"),
            better_auth_audience=(get("BETTER_AUTH_AUDIENCE") or better_auth_url).rstrip("/"),
            bcrypt_rounds=bcrypt_rounds,
            db_pool_min=pool_min,
            db_pool_max=pool_max,
            db_connect_timeout=_float(env, "DB_CONNECT_TIMEOUT", 3.0, low=0.1, high=60),
            db_statement_timeout=statement_timeout,
            db_max_per_user=max_per_user,
            max_tasks_per_user=max_tasks,
            search_timeout=search_timeout,
            search_concurrency=_int(env, "SEARCH_CONCURRENCY", 1, low=1, high=1000),
            log_level=log_level,
            log_format=log_format,
            metrics_port=_number(env, "METRICS_PORT", None, 1, 65535, int, "a port number", ""),
            sql_dir=sql_dir,
            shutdown_timeout=_float(env, "SHUTDOWN_TIMEOUT", 8.0, low=0, high=300),
            client_header_timeout=_float(env, "CLIENT_HEADER_TIMEOUT", 10.0, low=0.1, high=300),
            client_body_timeout=_float(env, "CLIENT_BODY_TIMEOUT", 10.0, low=0.1, high=300),
            keepalive_timeout=_float(env, "KEEPALIVE_TIMEOUT", 75.0, low=0.1, high=3600),
            rate_limit_signin_failures=_rate(env, "RATE_LIMIT_SIGNIN_FAILURES", "10/15minutes"),
            rate_limit_auth_per_ip=_rate(env, "RATE_LIMIT_AUTH_PER_IP", "30/minute"),
            rate_limit_auth_per_ipv6_48=_rate(env, "RATE_LIMIT_AUTH_PER_IPV6_48", "120/minute"),
            rate_limit_per_user=_rate(env, "RATE_LIMIT_PER_USER", "1200/minute"),
            rate_limit_storage=rate_limit_storage,
            rate_limit_key_prefix=key_prefix,
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            filled_in=tuple(filled),
            weak_secret=weak_secret,
        )

    def warn_filled_in(self, logger: logging.Logger) -> None:
        """The loud warning for settings the service made up by itself, or
        that production would refuse."""
        if self.weak_secret:
            logger.warning(
                "BETTER_AUTH_SECRET is guessable (%s): production refuses it; make one with %s",
                self.weak_secret,
                RANDOM_KEY_RECIPE,
            )
        for name in self.filled_in:
            if name == "BETTER_AUTH_SECRET":
                logger.warning(
                    "BETTER_AUTH_SECRET is not set: using a random secret for this run "
                    "(APP_ENV=%s). Tokens stop working when the service restarts. "
                    "Set it in .env; production refuses to start without it.",
                    self.app_env,
                )
            elif name == "DATABASE_URL":
                logger.warning(
                    "DATABASE_URL is not set: using the local default %s (APP_ENV=%s).",
                    parse_database_url(self.database_url).redacted(),
                    self.app_env,
                )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    return _number(env, name, default, low, high, int, "a whole number", "")


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    return _number(env, name, default, low, high, float, "a number of seconds", " seconds")


def _duration(
    env: Mapping[str, str], name: str, default: float, *, low: float, high: float
) -> float:
    """Seconds, bare or with a unit: `300ms`, `1s`, `0.3`."""
    raw = (env.get(name) or "").strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)?", raw)
    if raw and not match:
        raise SettingsError(f"{name} must be a duration like 300ms, 1s or 0.5, not {raw!r}")
    value = float(match[1]) / (1000 if match[2] == "ms" else 1) if match else default
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low * 1000:g}ms and {high:g}s, not {raw!r}")
    return value


def _number(
    env: Mapping[str, str],
    name: str,
    default: Any,
    low: Any,
    high: Any,
    parse: Callable[[str], Any],
    kind: str,
    unit: str,
) -> Any:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}{unit}, not {value}")
    return value


def _rate(env: Mapping[str, str], name: str, default: str) -> RateLimitItem | None:
    """`N/PERIOD` in the `limits` notation (`10/15minutes`, `30/minute`), or
    `off`. One limit per setting; N and the period's multiple at least 1."""
    raw = (env.get(name) or "").strip() or default
    if raw.lower() == "off":
        return None
    usage = f"{name} must be N/PERIOD like 30/minute or 10/15minutes, or off; not {raw!r}"
    try:
        items = parse_many(raw)
    except ValueError:
        raise SettingsError(usage) from None
    # `10/0seconds` would parse as 10 per second: refuse a zero period.
    if len(items) != 1 or items[0].amount < 1 or re.search(r"/\s*0+\s*[A-Za-z]", raw):
        raise SettingsError(usage)
    return items[0]


def _networks(
    env: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128)."""
    found = []
    for entry in (env.get(name) or "").split(","):
        if entry.strip():
            try:
                found.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise SettingsError(
                    f"{name} must be comma-separated CIDRs like 10.0.0.0/8,fd00::/8, "
                    f"not {entry.strip()!r}"
                ) from None
    return tuple(found)


def _has_host(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number or out of range
        return False


def _check_url(url: str, name: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{name} must be an http(s) URL like https://app.example.com, not {url!r}"
        )


def _check_origin(origin: str, name: str = "FRONTEND_URL") -> None:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise SettingsError(
            f"{name} entries must be origins like https://app.example.com, not {origin!r}"
        )
