"""The OpenAPI 3 document, built from the same marshmallow schemas that
validate requests (apispec's marshmallow plugin), once, at startup.

Every operation lists every status it can answer; every error is a problem
document; every response carries X-Request-ID."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from service import __version__
from service.auth.schemas import SessionSchema, SigninSchema, SignupSchema, UserSchema
from service.docs.assets import ASSETS
from service.jsonio import MAX_BODY_BYTES
from service.settings import Settings
from service.tasks.schemas import (
    TaskCompleteSchema,
    TaskCreateSchema,
    TaskListQuerySchema,
    TaskPatchSchema,
    TaskReplaceSchema,
    TaskSchema,
)

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
* Timestamps are RFC 3339 in UTC with `Z`; ids are UUIDs. A path id that is
  not a UUID is a 404, like one that does not exist. Another user's task is
  a 404 as well, for every method.
* `ETag` is the task's version. Send it back in `If-Match` on PUT, PATCH,
  `/complete` and DELETE to get a 412 instead of overwriting someone else's
  change; `If-None-Match` on GET gives a 304 when nothing changed.
* Lists are keyset pages: follow the `Link: <...>; rel="next"` header.
* 503 (with `Retry-After`) means the database is unreachable, or (for a
  Better Auth token whose key the service does not hold yet) the sign-in
  server's keys cannot be fetched; retry.
"""

_PROBLEM_EXAMPLE = {
    "type": "/problems/validation-error",
    "title": "Validation failed",
    "status": 422,
    "detail": "The request has invalid fields; see errors.",
    "instance": "/api/tasks",
    "errors": {"title": ["Must not be blank."]},
}

# status -> what it means, for every operation that can answer it
_ERRORS = {
    304: "Not modified: If-None-Match names the current ETag.",
    400: "Malformed JSON, or a body that is required is missing.",
    401: (
        "Missing, malformed, expired or invalid bearer token, or its account is gone "
        "(or, at sign-in, wrong credentials)."
    ),
    403: "The path names another user: neither the caller's id nor their Better Auth id.",
    404: "No such task for this user (or the id is not a UUID).",
    409: "The email is already registered (any letter case).",
    412: "If-Match does not match the task's current ETag.",
    413: f"The body is over {MAX_BODY_BYTES // 1024} KiB.",
    415: "The body is not declared as application/json (UTF-8).",
    422: "Invalid input; `errors` says which field and why.",
    503: (
        "The database is unreachable, or the Better Auth keys cannot be fetched; "
        "retry after Retry-After seconds."
    ),
}


def _problem(status: int) -> dict[str, Any]:
    if status == 304:
        return {
            "description": _ERRORS[304],
            "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
        }
    response: dict[str, Any] = {
        "description": _ERRORS[status],
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}
        }
    if status == 503:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


def _json(schema: Any, description: str, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in headers}
    return response


def _content(content_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {content_type: {"schema": {"type": "string"}}}}


def _body(schema: Any, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[int, Any], *errors: int) -> dict[str, Any]:
    responses = {str(status): response for status, response in ok.items()}
    for status in errors:
        responses[str(status)] = _problem(status)
    return dict(sorted(responses.items()))


_TASK_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The task's id.",
    "schema": {"type": "string", "format": "uuid"},
}
_USER_ID = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "description": (
        "The caller's own user id: their id here (a UUID) or, signed in through Better "
        "Auth, their Better Auth user id (`session.user.id`, the token's `sub`); any "
        "other is a 403."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "Only write if the task's ETag is one of these (strong comparison) or `*`.",
    "schema": {"type": "string"},
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "Answer 304 if the task's ETag is one of these (weak comparison) or `*`.",
    "schema": {"type": "string"},
}
_TASK = {"$ref": "#/components/schemas/Task"}
_DB = 503  # every route that reads or writes the database can answer it


def _task_operations(alias: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """The task operations, keyed by path suffix then method; the alias family
    adds the user_id path parameter and its 403."""
    guard = (403,) if alias else ()
    common = [_USER_ID] if alias else []
    tag = ["tasks (by user id)"] if alias else ["tasks"]
    writes = (400, 401, *guard, 404, 412, 413, 415, 422, _DB)

    def op(summary: str, op_id: str, responses: dict, **extra: Any) -> dict[str, Any]:
        params = common + extra.pop("parameters", [])
        operation = {
            "tags": tag,
            "summary": summary,
            "operationId": op_id + ("ByUser" if alias else ""),
        }
        if params:
            operation["parameters"] = params
        operation.update(extra)
        operation["responses"] = responses
        return operation

    return {
        "": {
            "get": op(
                "List the caller's tasks, one keyset page at a time",
                "listTasks",
                _responses(
                    {200: _json({"type": "array", "items": _TASK}, "A page of tasks.", ("Link",))},
                    401,
                    *guard,
                    422,
                    _DB,
                ),
                parameters=[{"in": "query", "schema": TaskListQuerySchema}],
                description=(
                    "The canonical parameters are `completed`, `q`, `sort`, `limit` and "
                    '`cursor`. The Hackathon "Evolution of Todo" names `status`, `search`, '
                    "`sort=created|updated|title`, `sort_by`, `order` and `sort_order` are "
                    "exact aliases; a parameter and its alias with different meanings is a "
                    "422 naming the alias."
                ),
            ),
            "post": op(
                "Create a task",
                "createTask",
                _responses(
                    {201: _json(_TASK, "The new task.", ("Location", "ETag"))},
                    400,
                    401,
                    *guard,
                    413,
                    415,
                    422,
                    _DB,
                ),
                requestBody=_body(TaskCreateSchema),
            ),
        },
        "/{id}": {
            "get": op(
                "Get one task",
                "getTask",
                _responses({200: _json(_TASK, "The task.", ("ETag",))}, 304, 401, *guard, 404, _DB),
                parameters=[_TASK_ID, _IF_NONE_MATCH],
            ),
            "put": op(
                "Replace a task's fields (title required; omitted fields keep their value)",
                "replaceTask",
                _responses({200: _json(_TASK, "The updated task.", ("ETag",))}, *writes),
                parameters=[_TASK_ID, _IF_MATCH],
                requestBody=_body(TaskReplaceSchema),
            ),
            "patch": op(
                "Change some of a task's fields (at least one)",
                "patchTask",
                _responses({200: _json(_TASK, "The updated task.", ("ETag",))}, *writes),
                parameters=[_TASK_ID, _IF_MATCH],
                requestBody=_body(TaskPatchSchema),
            ),
            "delete": op(
                "Delete a task",
                "deleteTask",
                _responses({204: {"description": "Deleted."}}, 401, *guard, 404, 412, _DB),
                parameters=[_TASK_ID, _IF_MATCH],
            ),
        },
        "/{id}/complete": {
            "patch": op(
                'Toggle a task\'s completed flag (no body), or set it ({"completed": bool})',
                "completeTask",
                _responses({200: _json(_TASK, "The updated task.", ("ETag",))}, *writes),
                parameters=[_TASK_ID, _IF_MATCH],
                requestBody=_body(TaskCompleteSchema, required=False),
            ),
        },
    }


def build_spec(settings: Settings) -> dict[str, Any]:
    spec = APISpec(
        title=settings.app_name,
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
        security=[{"bearerAuth": []}, {"betterAuth": []}],
        tags=[
            {"name": "health", "description": "Liveness and readiness."},
            {"name": "auth", "description": "Accounts and tokens."},
            {"name": "tasks", "description": "The caller's tasks."},
            {
                "name": "tasks (by user id)",
                "description": "The same task routes under the caller's own user id.",
            },
            {"name": "docs", "description": "This document and its viewer."},
        ],
    )
    c = spec.components
    c.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The service's own token (HS256), from sign-up or sign-in.",
        },
    )
    c.security_scheme(
        "betterAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A Better Auth JWT plugin token (`authClient.token()` or the `set-auth-jwt` "
                "header), accepted when BETTER_AUTH_URL is set: verified with the keys at "
                "BETTER_AUTH_URL/api/auth/jwks, chosen by `kid`; `iss` and `aud` must be "
                "that URL; never HS256."
            ),
        },
    )
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
    c.schema("User", schema=UserSchema)
    c.schema("Session", schema=SessionSchema)
    c.schema("Task", schema=TaskSchema)
    for name, description, schema in [
        (
            "ETag",
            "The task's version, a strong entity tag; changes on every write.",
            {"type": "string", "example": '"3"'},
        ),
        ("Location", "Where the new resource lives.", {"type": "string"}),
        (
            "Link",
            'The next page: `<full URL with cursor>; rel="next"`. Absent on the last page.',
            {"type": "string"},
        ),
        (
            "X-Request-ID",
            "The caller's X-Request-ID if it was 1-128 of [A-Za-z0-9._:-], else a "
            "new one; the logs carry it too.",
            {"type": "string"},
        ),
        ("WWW-Authenticate", "The scheme to use: Bearer.", {"type": "string"}),
        ("Retry-After", "Seconds to wait before retrying.", {"type": "integer"}),
    ]:
        c.header(name, {"description": description, "schema": schema})

    def add(
        method: str,
        path: str,
        tag: str,
        op_id: str,
        summary: str,
        responses: dict,
        *,
        public: bool = False,
        **extra: Any,
    ) -> None:
        operation = {"tags": [tag], "summary": summary, "operationId": op_id, **extra}
        if public:
            operation["security"] = []
        operation["responses"] = responses
        spec.path(path, operations={method: operation})

    def status_ok(*fields: str) -> dict[str, Any]:
        return {
            "type": "object",
            "required": list(fields),
            "properties": {
                f: {"type": "string", "enum": ["ok"]}
                if f in ("status", "database")
                else {"type": "string"}
                for f in fields
            },
        }

    session = {"$ref": "#/components/schemas/Session"}
    add(
        "get",
        "/health",
        "health",
        "health",
        "Liveness; never touches the database",
        _responses({200: _json(status_ok("status", "app", "version"), "Alive.")}),
        public=True,
    )
    add(
        "get",
        "/ready",
        "health",
        "ready",
        "Readiness: the database answers and the schema is current",
        _responses({200: _json(status_ok("status", "database"), "Ready.")}, 503),
        public=True,
    )
    add(
        "post",
        "/api/auth/signup",
        "auth",
        "signup",
        "Create an account and get a session",
        _responses(
            {201: _json(session, "Signed up.", ("Location",))}, 400, 409, 413, 415, 422, _DB
        ),
        public=True,
        requestBody=_body(SignupSchema),
    )
    add(
        "post",
        "/api/auth/signin",
        "auth",
        "signin",
        "Sign in with email and password",
        _responses({200: _json(session, "Signed in.")}, 400, 401, 413, 415, 422, _DB),
        public=True,
        requestBody=_body(SigninSchema),
    )
    add(
        "get",
        "/api/auth/me",
        "auth",
        "me",
        "The signed-in user",
        _responses({200: _json({"$ref": "#/components/schemas/User"}, "The user.")}, 401, _DB),
    )
    for prefix, alias in (("/api/tasks", False), ("/api/{user_id}/tasks", True)):
        for suffix, operations in _task_operations(alias).items():
            spec.path(prefix + suffix, operations=operations)
    add(
        "get",
        "/metrics",
        "health",
        "metrics",
        "Prometheus metrics (text exposition format)",
        {"200": _content("text/plain", "Metrics, summed over all workers.")},
        public=True,
    )
    add(
        "get",
        "/openapi.json",
        "docs",
        "openapi",
        "This document",
        _responses({200: _json({"type": "object"}, "The OpenAPI document.")}),
        public=True,
    )
    add(
        "get",
        "/docs",
        "docs",
        "docs",
        "An interactive viewer for this document (works offline)",
        {"200": _content("text/html", "An HTML page.")},
        public=True,
    )
    add(
        "get",
        "/docs/{asset}",
        "docs",
        "docsAsset",
        "The viewer's scripts and styles",
        {
            "200": _content("*/*", "A script, style sheet or icon."),
            "404": _problem(404) | {"description": "No such asset."},
        },
        public=True,
        parameters=[
            {
                "name": "asset",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": sorted(ASSETS)},
            }
        ],
    )
    document = spec.to_dict()
    # PATCH needs at least one field: say so in the schema, so a generated
    # client (and the fuzzer) knows an empty object is not a valid patch.
    document["components"]["schemas"]["TaskPatch"]["anyOf"] = [
        {"required": [name]} for name in ("title", "description", "completed")
    ]
    _add_request_id_header(document)
    return document


def _add_request_id_header(document: dict[str, Any]) -> None:
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation["responses"].values():
                response.setdefault("headers", {})["X-Request-ID"] = {
                    "$ref": "#/components/headers/X-Request-ID"
                }
