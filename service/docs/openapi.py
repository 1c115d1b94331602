"""The OpenAPI 3 document, built once at startup from the router and the
operations handlers declare (service/docs/operation.py); this module holds
what is document-wide: info, security schemes, Problem, headers, statuses."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from service import __version__
from service.auth.tokens import needs_token
from service.docs.operation import Answer, Mount, Operation, declared
from service.jsonio import MAX_BODY_BYTES
from service.schemas import StrictSchema
from service.settings import Settings

OPENAPI_VERSION = "3.0.3"

DESCRIPTION = f"""\
The JSON API behind the todo web app: accounts with email and password,
bearer tokens (JWT), and each person's own tasks.

* Two kinds of bearer token are accepted in `Authorization: Bearer <token>`:
  the service's own (`bearerAuth`: from sign-up and sign-in here, HS256), and,
  when the service is configured with the frontend's Better Auth server, the
  tokens of its JWT plugin (`betterAuth`: from its `/api/auth/token` or the
  `set-auth-jwt` header; EdDSA by default, also ES256, ES512, RS256, PS256,
  verified with the keys it publishes). A Better Auth user's first request
  creates their account here, linked to their Better Auth user id and never
  matched by email; under `/api/{{user_id}}/tasks` either id may be used.

* Bodies are JSON (`Content-Type: application/json`, UTF-8, at most
  {MAX_BODY_BYTES // 1024} KiB). Unknown body fields are a 422, except the read-only
  `id`, `user_id`, `created_at` and `updated_at`, which are ignored, so an
  object received may be sent back.
* Every error is an RFC 9457 problem document (`application/problem+json`);
  a 422 adds `errors`, marshmallow's `{{"field": ["message"]}}`.
* Every answer carries `X-Content-Type-Options: nosniff`, and CORS headers
  for an allowed origin (`FRONTEND_URL`) whatever its status; answers with
  account or task data carry `Cache-Control: no-store` (a task with an
  `ETag`: `private, no-cache`).
* Timestamps are RFC 3339 in UTC with `Z`; ids are UUIDs. A path id that is
  not a UUID is a 404, like one that does not exist. Another user's task is
  a 404 as well, for every method.
* `ETag` is the task's version. Send it back in `If-Match` on PUT, PATCH,
  `/complete` and DELETE to get a 412 instead of overwriting someone else's
  change; `If-None-Match` on GET gives a 304 when nothing changed.
* Lists are keyset pages: follow the `Link: <...>; rel="next"` header.
* 429 (with `Retry-After`) on a signed-in route means the account has too
  many requests in flight at once (`DB_MAX_PER_USER` database connections);
  send fewer at a time.
* 503 (with `Retry-After`) means the database is unreachable, or (for a
  Better Auth token whose key the service does not hold yet) the sign-in
  server's keys cannot be fetched, or too many such tokens already wait
  for the next fetch; retry.
* 429 (with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit`
  headers) means a rate limit is reached: sign-in failures per account (past
  it, even the right password waits), sign-up and sign-in attempts per
  client address, or requests per user.
"""

_PROBLEM_EXAMPLE = {
    "type": "/problems/validation-error",
    "title": "Validation failed",
    "status": 422,
    "detail": "The request has invalid fields; see errors.",
    "instance": "/api/tasks",
    "errors": {"title": ["Must not be blank."]},
}

# status -> what it means, unless the operation's `notes` say otherwise
_ERRORS = {
    400: (
        "Malformed JSON (an object repeating a key included: type "
        "`/problems/repeated-key`), a required body missing, a malformed Host, an "
        "absolute-form request target naming another host than Host (or PUBLIC_URL), "
        "or If-Match / If-None-Match over 1 KiB."
    ),
    401: "Missing, malformed, expired, signed-out or invalid bearer token, or its account is gone.",
    403: "Forbidden.",
    404: "Not found.",
    408: "The body did not arrive within CLIENT_BODY_TIMEOUT.",
    409: "Conflict.",
    410: "Gone.",
    412: "A precondition (If-Match) does not hold.",
    413: f"The body is over {MAX_BODY_BYTES // 1024} KiB.",
    415: "The body is not declared as application/json (UTF-8).",
    422: "Invalid input; `errors` says which field and why.",
    429: (
        "A rate limit is reached, or too many requests of this account are in flight "
        "at once (DB_MAX_PER_USER); `detail` says which. Retry after Retry-After seconds "
        "(for a rate limit, RateLimit-Policy and RateLimit say the same, IETF syntax)."
    ),
    503: (
        "The database is unreachable, or the Better Auth keys cannot be fetched (or too "
        "many tokens wait for them); retry after Retry-After seconds."
    ),
}
# What the bearer-token check adds to every route that needs a token (429:
# the per-user rate limit, counted once the caller is known, and the
# caller's DB_MAX_PER_USER share of the pool).
_TOKEN_PROBLEMS = (401, 429, 503)
# What any request can answer before its route runs: a malformed Host, an
# absolute-form target naming another host, or an oversized list header
# (service.middlewares.refuse_bad_head).
_EVERY_ROUTE_PROBLEMS = (400,)
_TAGS = {
    "health": "Liveness and readiness.",
    "auth": "Accounts and tokens.",
    "tasks": "The caller's tasks.",
    "tasks (by user id)": "The same task routes under the caller's own user id.",
    "docs": "This document and its viewer.",
}
_SECURITY_SCHEMES = {
    "bearerAuth": "The service's own token (HS256), from sign-up or sign-in.",
    "betterAuth": (
        "A Better Auth JWT plugin token (`authClient.token()` or the `set-auth-jwt` "
        "header), accepted when BETTER_AUTH_URL is set: verified with the keys at "
        "BETTER_AUTH_URL/api/auth/jwks, chosen by `kid`; `iss` and `aud` must be "
        "that URL; never HS256."
    ),
}
# components/headers: their descriptions, and their schemas where not a string
_HEADERS = {
    "ETag": "The task's version, a strong entity tag; changes on every write.",
    "Location": "Where the new resource lives.",
    "Link": 'The next page: `<full URL with cursor>; rel="next"`. Absent on the last page.',
    "X-Request-ID": (
        "The caller's X-Request-ID if it was 1-128 of [A-Za-z0-9._:-], else a "
        "new one; the logs carry it too."
    ),
    "WWW-Authenticate": "The scheme to use: Bearer.",
    "Idempotent-Replayed": (
        "`true` when this is the kept answer to an earlier request with the same "
        "Idempotency-Key and request, sent again."
    ),
    "Retry-After": "Seconds to wait before retrying.",
    "RateLimit-Policy": (
        "The limit that was reached (draft-ietf-httpapi-ratelimit-headers): its name, "
        'quota `q` and window `w` in seconds, e.g. `"per-user";q=1200;w=60`.'
    ),
    "RateLimit": (
        "What is left of that limit: remaining `r` and seconds `t` until the window "
        'ends, e.g. `"per-user";r=0;t=37`.'
    ),
}
_HEADER_SCHEMAS = {"ETag": {"type": "string", "example": '"3"'}, "Retry-After": {"type": "integer"}}


class _Plugin(MarshmallowPlugin):
    """apispec's marshmallow plugin, plus what a schema class adds in its
    `json_schema_extra` (a rule JSON Schema says and field lists cannot)."""

    def schema_helper(self, name: str, _: Any, schema: Any = None, **kwargs: Any) -> Any:
        json_schema = super().schema_helper(name, _, schema=schema, **kwargs)
        if schema is None:  # a component given as a dict (Problem)
            return json_schema
        cls = resolve_schema_cls(schema)
        if issubclass(cls, StrictSchema):  # a wider body is refused unread
            json_schema["maxProperties"] = len(cls().fields)
        return {**json_schema, **getattr(cls, "json_schema_extra", {})}


def build_spec(settings: Settings, router: web.UrlDispatcher) -> dict[str, Any]:
    spec = APISpec(
        title=settings.app_name,
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[_Plugin()],
        info={"description": DESCRIPTION},
        security=[{"bearerAuth": []}, {"betterAuth": []}],
        tags=[{"name": name, "description": text} for name, text in _TAGS.items()],
    )
    c = spec.components
    for name, description in _SECURITY_SCHEMES.items():
        bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        c.security_scheme(name, {**bearer, "description": description})
    c.schema(
        "Problem",
        {
            "type": "object",
            "description": "An RFC 9457 problem document.",
            "required": ["type", "title", "status", "instance"],
            "properties": {
                "type": {
                    "type": "string",
                    "description": "A URI reference naming the kind of problem.",
                },
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "description": "The request path."},
                "errors": {
                    "type": "object",
                    "description": "422 only: messages by field, marshmallow's shape.",
                    "additionalProperties": {},
                },
            },
            "example": _PROBLEM_EXAMPLE,
        },
    )
    for name, description in _HEADERS.items():
        schema = _HEADER_SCHEMAS.get(name, {"type": "string"})
        c.header(name, {"description": description, "schema": schema})

    for route in router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue  # not API operations (preflights have no route: middlewares.py)
        path = route.resource.canonical
        op = declared(route.handler)
        if op is None:
            raise LookupError(f"{route.method} {path}: its handler declares no @operation")
        operation = _operation(op, _mount(op, path), path)
        spec.path(path, operations={route.method.lower(): operation})
    return spec.to_dict()


def _mount(op: Operation, path: str) -> Mount:
    if not op.mounts:
        return Mount("", tag="")
    for mount in op.mounts:
        if path == mount.prefix or path.startswith(mount.prefix + "/"):
            return mount
    raise LookupError(f"{path} is under none of {op.operation_id}'s mounts")


def _operation(op: Operation, mount: Mount, path: str) -> dict[str, Any]:
    parameters = [*mount.parameters, *op.parameters]
    in_path = {p["name"] for p in parameters if p["in"] == "path"}
    if in_path != set(re.findall(r"{(\w+)}", path)):
        raise LookupError(f"{path}: {op.operation_id} documents path parameters {in_path}")
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    token = needs_token(path)
    problems = {
        *op.problems,
        *mount.problems,
        *_EVERY_ROUTE_PROBLEMS,
        *(_TOKEN_PROBLEMS if token else ()),
    }
    notes = {**mount.notes, **op.notes}
    responses = {str(s): _answer(a, mount) for s, a in op.ok.items()}
    responses |= {str(s): _problem(s, notes.get(s, _ERRORS[s])) for s in problems}
    operation: dict[str, Any] = {
        "tags": [op.tag or mount.tag],
        "summary": op.summary,
        "operationId": op.operation_id + mount.operation_suffix,
    }
    if op.description:
        operation["description"] = op.description
    if parameters:
        operation["parameters"] = parameters
    if not token:
        operation["security"] = []
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": op.body}},
        }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _answer(answer: Answer, mount: Mount) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    if answer.schema is not None:
        response["content"] = {answer.content_type: {"schema": answer.schema}}
    response["headers"] = _headers(*answer.headers)
    if answer.links:
        response["links"] = {
            name: {**link, "operationId": link["operationId"] + mount.operation_suffix}
            for name, link in answer.links.items()
        }
    return response


def _problem(status: int, description: str) -> dict[str, Any]:
    extra = {
        401: ("WWW-Authenticate",),
        429: ("Retry-After", "RateLimit-Policy", "RateLimit"),
        503: ("Retry-After",),
    }.get(status, ())
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
        "headers": _headers(*extra),
    }


def _headers(*names: str) -> dict[str, Any]:
    """Header references; every response carries X-Request-ID."""
    return {h: {"$ref": f"#/components/headers/{h}"} for h in (*names, "X-Request-ID")}
