"""The problem+json family (RFC 9457): the problems the client can act on,
the exceptions they stand for, and their rendering (service.middlewares
catches, logs and counts them)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from marshmallow import ValidationError

from service.constraints import CONSTRAINTS, Constraint

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"
RETRY_AFTER_SECONDS = 2

# Headers an aiohttp HTTPException carries that a client needs (405's Allow,
# 401's WWW-Authenticate, 503's Retry-After, 3xx Location).
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Location")


class Problem(Exception):
    """An error the client can act on. Raise it anywhere; the middleware
    renders it. A subclass sets its defaults in its class statement:
    `class Conflict(Problem, status=409, slug="conflict", title="Conflict")`."""

    status: int = 500
    slug: str | None = None  # None means type "about:blank"
    title: str | None = None
    detail: str | None = None  # when the raiser gives none
    retry_after: int | None = None  # seconds, sent as Retry-After
    headers: Mapping[str, str] = {}  # sent by every instance, with the raiser's

    def __init_subclass__(cls, **defaults: Any) -> None:
        super().__init_subclass__()
        for name, value in defaults.items():
            if name not in Problem.__annotations__:
                raise TypeError(f"{cls.__name__}: a Problem has no default {name!r}")
            setattr(cls, name, value)

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        status: int | None = None,
        title: str | None = None,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        detail = self.detail if detail is None else detail
        super().__init__(detail)
        for name, value in (("status", status), ("title", title), ("slug", slug)):
            if value is not None:
                setattr(self, name, value)
        self.detail = detail
        retry_after = self.retry_after if retry_after is None else retry_after
        retry = {} if retry_after is None else {"Retry-After": str(max(1, retry_after))}
        self.headers = {**retry, **self.headers, **(headers or {})}
        self.extra = dict(extra or {})

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug if self.slug else "about:blank"

    def body(self, instance: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
        }
        if self.detail:
            doc["detail"] = self.detail
        doc["instance"] = instance
        doc.update(self.extra)
        return doc


class BadRequest(Problem, status=400): ...


class MalformedJSON(Problem, status=400, slug="malformed-json", title="Malformed JSON"): ...


class RepeatedKey(MalformedJSON, slug="repeated-key", title="Repeated JSON key"):
    """A JSON object that names one key twice: parsers disagree on which
    value counts, so the body is refused rather than read one way."""


class SyncTokenInvalid(
    BadRequest,
    slug="sync-token-invalid",
    title="Invalid sync token",
    detail="This is not a sync token this service gave you; sync from the start, without since.",
): ...


class Unauthorized(
    Problem,
    status=401,
    slug="unauthorized",
    title="Authentication required",
    detail="A valid bearer token is required.",
    headers={"WWW-Authenticate": 'Bearer realm="todo-api"'},
): ...


class AccountGone(Unauthorized, detail="The account for this token no longer exists."): ...


class Forbidden(Problem, status=403, slug="forbidden", title="Forbidden"): ...


class TaskLimitReached(Forbidden, slug="task-limit-reached", title="Task limit reached"):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This account has {limit} tasks, the most it may have; delete some to add more.",
            extra={"limit": limit},
        )


class WrongPassword(
    Forbidden, slug="wrong-password", title="Wrong password", detail="The password is incorrect."
): ...


class ManagedByBetterAuth(Forbidden, slug="managed-by-better-auth", title="Managed by Better Auth"):
    def __init__(self, what: str) -> None:
        super().__init__(f"This account signs in with Better Auth: {what} through it.")


class NotFound(Problem, status=404, title="Not Found"): ...


class RequestTimeout(Problem, status=408, slug="request-timeout", title="Request Timeout"): ...


class Conflict(Problem, status=409, slug="conflict", title="Conflict"): ...


class EmailTaken(
    Conflict,
    slug="email-taken",
    title="Email already registered",
    detail="An account with this email already exists.",
): ...


class PreconditionFailed(
    Problem, status=412, slug="precondition-failed", title="Precondition Failed"
): ...


class SyncTokenExpired(Problem, status=410, slug="sync-token-expired", title="Sync token expired"):
    """A token this database can no longer serve: sync from the start."""

    def __init__(self, why: str) -> None:
        super().__init__(f"{why} Sync from the start: call again without since.")


class UnsupportedMediaType(Problem, status=415, title="Unsupported Media Type"): ...


class Unprocessable(Problem, status=422, slug="validation-error", title="Validation failed"):
    """422 with marshmallow's `{"field": ["message", ...]}` shape."""

    def __init__(self, errors: Mapping[str, Any], detail: str | None = None) -> None:
        super().__init__(
            detail or "The request has invalid fields; see errors.",
            extra={"errors": _normalise_errors(errors)},
        )


class SearchTooBroad(Unprocessable, slug="search-too-broad", title="Search too broad"):
    """A `q` listing ran past SEARCH_TIMEOUT and was cancelled."""

    def __init__(self) -> None:
        message = "This search takes too long; narrow it: a longer q, or add filters."
        super().__init__({"q": [message]}, detail=message)


class TooManyRequests(Problem, status=429, slug="rate-limited", title="Too many requests"):
    """A rate limit (its IETF RateLimit headers given by the raiser) or a
    per-user share of the database."""


class TooManyInFlight(
    TooManyRequests,
    slug="too-many-in-flight",
    title="Too many requests in flight",
    detail="This account has too many requests in flight at once; "
    "retry after Retry-After seconds, or send fewer at a time.",
    retry_after=1,
):
    """The account already holds DB_MAX_PER_USER database connections and
    none came back within a short wait."""


class SearchInProgress(
    TooManyRequests,
    slug="search-in-progress",
    title="A search is already running",
    detail="This account already has a search running; wait for it before searching again.",
    retry_after=1,
): ...


class ServiceBusy(
    Problem, status=503, slug="busy", title="Service busy", retry_after=RETRY_AFTER_SECONDS
):
    """503 at once, when waiting would only make the caller wait longer
    (e.g. the password-hashing queue is full)."""


class SearchesBusy(
    ServiceBusy,
    slug="searches-busy",
    title="Searches busy",
    detail="Too many searches are running; retry after Retry-After seconds.",
): ...


class DatabaseUnavailable(
    Problem,
    status=503,
    slug="database-unavailable",
    title="Database unavailable",
    detail="The database is unavailable; retry shortly.",
    retry_after=RETRY_AFTER_SECONDS,
): ...


class PoolExhausted(
    DatabaseUnavailable, detail="Every database connection is busy; retry shortly."
):
    """The database answers but the pool is full: counted apart from an
    outage (todo_db_errors_total{kind="pool_exhausted"})."""


# The problems service/constraints.py names, by class name.
CONSTRAINT_PROBLEMS = {p.__name__: p for p in (AccountGone, EmailTaken)}


def constraint_problem(constraint: Constraint) -> Problem:
    """What the client gets for a violation of a constraint in the table: a
    CHECK that mirrors a validator is a 422 on its field."""
    if constraint.field is not None:
        return Unprocessable({constraint.field: [constraint.message]})
    return CONSTRAINT_PROBLEMS[constraint.problem or ""]()


_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable (ConnectionError is a subclass)
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.CannotConnectNowError,  # 57P03: starting up / shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by administrator
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,  # 57014: statement_timeout
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.InsufficientResourcesError,  # class 53
    asyncpg.InterfaceError,  # "connection is closed" and friends
    asyncpg.InternalClientError,
    # A prepared statement a pooler lost or handed over (DATABASE_POOLER
    # unset in front of one): retryable, never a bug of the request.
    asyncpg.InvalidSQLStatementNameError,  # 26000
    asyncpg.DuplicatePreparedStatementError,  # 42P05
)

_TIMEOUTS = (asyncio.TimeoutError, asyncpg.QueryCanceledError)

_BAD_TEXT = (
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.UntranslatableCharacterError,
    asyncpg.InvalidTextRepresentationError,
    asyncpg.StringDataRightTruncationError,
)


def problem_from_exception(exc: BaseException) -> Problem | None:
    """The problem a known exception stands for; None for a bug."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, ValidationError):
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return Unprocessable(errors)
    if isinstance(exc, web.HTTPException):
        headers = {k: exc.headers[k] for k in _KEPT_HEADERS if k in exc.headers}
        detail = {
            404: "No resource at this address.",
            405: f"Method not allowed here; use one of: {headers.get('Allow', '')}.",
            413: "The request body is too large.",
        }.get(exc.status)
        if detail is None and exc.text and not exc.text.startswith(f"{exc.status}:"):
            detail = exc.text
        return Problem(detail, status=exc.status, headers=headers)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        constraint = CONSTRAINTS.get(getattr(exc, "constraint_name", None) or "")
        return constraint_problem(constraint) if constraint is not None else None
    if isinstance(exc, _BAD_TEXT):
        return Unprocessable({"_schema": ["Text contains characters that cannot be stored."]})
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable()
    return None


def problem_response(problem: Problem, instance: str) -> web.Response:
    """`problem` as an application/problem+json response about `instance`
    (the request's path)."""
    return web.Response(
        body=orjson.dumps(problem.body(instance)),
        status=problem.status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def db_error_kind(problem: DatabaseUnavailable, exc: BaseException) -> str:
    """The todo_db_errors_total label: a full pool is not an outage, nor a
    statement timeout."""
    if isinstance(problem, PoolExhausted):
        return "pool_exhausted"
    return "timeout" if isinstance(exc, _TIMEOUTS) else "unavailable"


def _normalise_errors(errors: Mapping[Any, Any]) -> dict[str, Any]:
    # marshmallow's shape, with keys as strings so it serialises cleanly: a
    # list's errors are keyed by index ({"tags": {0: [...]}}).
    return {
        str(k): _normalise_errors(v) if isinstance(v, Mapping) else v for k, v in errors.items()
    }
