"""DATABASE_URL, as people paste it (docs/operating.md), turned into what asyncpg
(serve) and psycopg (migrate, rollback) need; else a ValueError without the password."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from psycopg.conninfo import make_conninfo

SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CHANNEL_BINDINGS = ("disable", "prefer", "require")
# libpq parameters passed on to psycopg as they are; asyncpg reads its own and
# would hand the rest to the server as settings.
_SSL = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl")
_CONNECTION = ("channel_binding", "options", "host", "port", "application_name", "connect_timeout")
_LIBPQ = (*_SSL, *_CONNECTION, "target_session_attrs")
_ASYNCPG_OWN = (*_SSL, "target_session_attrs")
_ALIASES = ("ssl", "pgbouncer")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
# Neon's pooled endpoints are <endpoint>-pooler.<region>.<provider>.neon.tech.
_NEON_POOLER = re.compile(r"^[^.]+-pooler\.")


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    host: str
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    dbname: str
    params: Mapping[str, str]  # libpq names only (see _LIBPQ)
    pooler_hint: bool  # the URL itself says a transaction pooler is in front

    @property
    def channel_binding_required(self) -> bool:
        return self.params.get("channel_binding") == "require"

    def asyncpg_dsn(self) -> str:
        """A URL asyncpg reads as libpq would, minus channel binding (it has none) and
        the parameters it would send the server as settings."""
        query = {k: v for k, v in self.params.items() if k in _ASYNCPG_OWN or k == "options"}
        if self.params.get("application_name"):
            query["application_name"] = self.params["application_name"]
        return self._url(query)

    def psycopg_conninfo(self, dbname: str | None = None) -> str:
        """A libpq conninfo string (key=value, quoted): no URL ambiguity."""
        return make_conninfo(  # which leaves out the None ones
            "",
            dbname=dbname or self.dbname,
            host=self.host or None,
            port=self.port or None,
            user=self.user or None,
            password=self.password,
            **{k: v for k, v in self.params.items() if k not in ("host", "port")},
        )

    def redacted(self) -> str:
        """For logs: the URL without its password."""
        return self._url(dict(self.params), password=False)

    def _url(self, query: Mapping[str, str], *, password: bool = True) -> str:
        netloc = ""
        if self.user:
            netloc = quote(self.user, safe="")
            if password and self.password is not None:
                netloc += ":" + quote(self.password, safe="")
            netloc += "@"
        if not self.host.startswith("/"):
            netloc += f"[{self.host}]" if ":" in self.host else self.host
            if self.port:
                netloc += f":{self.port}"
        else:  # a socket directory goes in the query, as libpq allows
            query = {"host": self.host, **({"port": str(self.port)} if self.port else {}), **query}
        text = f"postgresql://{netloc}/{quote(self.dbname, safe='')}"
        return text + ("?" + urlencode(query) if query else "")


def parse_database_url(url: str) -> DatabaseURL:
    """Parse and check DATABASE_URL; ValueError (one line, no password)."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        raise ValueError("must look like postgresql://user:password@host:5432/dbname")
    if scheme.lower() not in SCHEMES:
        raise ValueError(
            f"scheme {scheme[:30]!r} is not one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    # An unencoded @, : or / in the password changes the URL: say so, without showing it.
    user, _, password = rest.split("?", 1)[0].rpartition("@")[0].partition(":")
    bad = [c for c in "@/:#" if c in password] + [c for c in "@/#" if c in user]
    if bad:
        raise ValueError(
            f"the user or password holds an unencoded {bad[0]!r}: percent-encode it "
            f"({quote(bad[0], safe='')})"
        )
    try:
        parts = urlsplit("postgresql://" + rest)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise ValueError(
            "cannot be parsed: is a character of the password (@ : / ? #) not percent-encoded?"
        ) from None
    if parts.fragment:
        raise ValueError("has a '#': percent-encode it in the password as %23")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    params, pooler_hint = _params(query)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise ValueError("names no database: add /dbname after the host")
    host = params.pop("host", None) or unquote(hostname or "")
    if "port" in params:
        text = params.pop("port")
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ValueError("port must be a number from 1 to 65535")
        port = int(text)
    if not host:
        raise ValueError("names no host: add one, or ?host=/path/to/socket/dir")
    return DatabaseURL(
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        dbname=dbname,
        params=params,
        pooler_hint=pooler_hint or bool(_NEON_POOLER.match(host)),
    )


def _params(query: dict[str, str]) -> tuple[dict[str, str], bool]:
    params: dict[str, str] = {}
    pooler = False
    for name, value in query.items():
        if name not in _LIBPQ and name not in _ALIASES:
            raise ValueError(
                f"has the unknown parameter {name[:40]!r} (known: {', '.join(_LIBPQ + _ALIASES)})"
            )
        if name == "pgbouncer":
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(f"{name} must be true or false")
            pooler = value.lower() in _TRUE
        elif name == "ssl":
            mode = value.lower()
            mode = "require" if mode in _TRUE else "disable" if mode in _FALSE else mode
            if "sslmode" in query and query["sslmode"] != mode:
                raise ValueError("gives ssl and sslmode that disagree; keep one")
            params["sslmode"] = mode
        else:
            params[name] = value
    if params.get("sslmode", "prefer") not in SSLMODES:
        raise ValueError(f"sslmode must be one of {', '.join(SSLMODES)}")
    if params.get("channel_binding", "prefer") not in CHANNEL_BINDINGS:
        raise ValueError(f"channel_binding must be one of {', '.join(CHANNEL_BINDINGS)}")
    return params, pooler
