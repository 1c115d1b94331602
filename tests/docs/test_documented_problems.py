"""Every status a handler can answer is in the OpenAPI document.

Read statically from each handler's source and from every function of the
service it calls, so a `raise Conflict(...)` added on any path of any handler
fails here even when no test takes that path. What is found:

- `raise X(...)`: X's status, for a Problem (or aiohttp HTTPException) class,
  a `status=` given to it, or the Problem a called function is annotated to
  return; a marshmallow ValidationError is a 422;
- `<schema>.load(...)`: 422; `request.read()` (the body): 413;
- a query through the app's database: 503, and the problems of the
  constraints of the table the query writes;
- a method of any other app object (the cursor codec): followed like a function;
- `status=<int>` given to a response: that status;
- on every route the bearer-token check guards: 401, 503 and the
  per-user rate limit's 429;
- and on every route, service.middlewares.refuse_bad_head's 400."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from marshmallow import Schema, ValidationError

from service import constraints, errors, keys
from service.app import create_app
from service.auth.tokens import PUBLIC_ROUTES
from service.db import Database
from service.docs.operation import declared
from service.middlewares import refuse_bad_head
from service.tasks.idempotency import idempotent
from tests.conftest import make_settings

APP = create_app(make_settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"))
DOCUMENT = orjson.loads(APP[keys.OPENAPI])
ROUTES = [r for r in APP.router.routes() if r.method not in ("OPTIONS", "HEAD", "*")]
_BODY_READS = {"read", "json", "text", "post"}  # aiohttp answers 413 past client_max_size


def _status_of(kind: Any) -> int | None:
    if inspect.isclass(kind):
        if issubclass(kind, errors.Problem):
            return kind.status
        if issubclass(kind, ValidationError):
            return 422
        if issubclass(kind, web.HTTPException):
            return kind.status_code
    return None


class Answers:
    """The statuses a function can answer, following what it calls."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.seen: set[Any] = set()

    def of(self, fn: Callable[..., Any], owner: type | None = None) -> set[int]:
        fn = inspect.unwrap(fn)
        module = getattr(fn, "__module__", None) or ""
        if fn in self.seen or not module.startswith("service."):
            return set()
        self.seen.add(fn)
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        scope = _Scope(self, fn, owner)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    value = scope.value(node.value)
                    if value is not _UNKNOWN:
                        scope.names[target.id] = value
        statuses: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                statuses |= scope.raised(node.exc)
            elif isinstance(node, ast.Raise) and node.exc is not None:  # `raise NotFound`
                status = _status_of(scope.value(node.exc))
                statuses |= {status} if status else set()
            elif isinstance(node, ast.Call):
                statuses |= scope.called(node)
        return statuses


_UNKNOWN = object()


class _Scope:
    def __init__(self, answers: Answers, fn: Callable[..., Any], owner: type | None) -> None:
        self.answers = answers
        self.fn = fn
        self.owner = owner
        self.names: dict[str, Any] = {}  # locals bound to app objects

    def value(self, node: ast.expr) -> Any:
        """The object an expression names, if it is a global, an attribute of
        one, or an app object (`request.app[keys.X]`); else _UNKNOWN."""
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id == "self" and self.owner is not None:
                return self.owner
            return self.fn.__globals__.get(node.id, _UNKNOWN)
        if isinstance(node, ast.Attribute):
            base = self.value(node.value)
            return _UNKNOWN if base is _UNKNOWN else getattr(base, node.attr, _UNKNOWN)
        if isinstance(node, ast.Subscript):
            key = self.value(node.slice)
            if isinstance(key, web.AppKey):
                return self.answers.app.get(key, _UNKNOWN)
        return _UNKNOWN

    def raised(self, call: ast.Call) -> set[int]:
        kind = self.value(call.func)
        if inspect.isfunction(kind) or inspect.ismethod(kind):
            kind = inspect.get_annotations(kind, eval_str=True).get("return")
        status = _status_of(kind)
        for keyword in call.keywords:
            if keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
                status = keyword.value.value
        return {status} if status else set()

    def called(self, call: ast.Call) -> set[int]:
        statuses = set()
        for keyword in call.keywords:
            if keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
                statuses.add(keyword.value.value)
        func = call.func
        if not isinstance(func, ast.Attribute):
            target = self.value(func)
            return statuses | (self.answers.of(target) if inspect.isfunction(target) else set())
        if (
            func.attr in _BODY_READS
            and isinstance(func.value, ast.Name)
            and func.value.id == "request"
        ):
            return statuses | {413}
        obj = self.value(func.value)
        if isinstance(obj, Schema) and func.attr == "load":
            return statuses | {422}
        if isinstance(obj, Database):
            return statuses | {503} | self._query(call)
        if obj is _UNKNOWN:
            return statuses
        if inspect.ismodule(obj):  # `conditional.etag(...)`
            target = getattr(obj, func.attr, None)
            return statuses | (self.answers.of(target) if inspect.isfunction(target) else set())
        owner = obj if inspect.isclass(obj) else type(obj)
        method = inspect.getattr_static(owner, func.attr, None)
        if isinstance(method, staticmethod | classmethod):
            method = method.__func__
        return statuses | (self.answers.of(method, owner) if inspect.isfunction(method) else set())

    def _query(self, call: ast.Call) -> set[int]:
        if not call.args or not isinstance(call.args[0], ast.Constant):
            return set()
        return set(constraints.statuses(call.args[0].value))


def answered(route: web.AbstractRoute) -> set[int]:
    path = route.resource.canonical
    statuses = Answers(APP).of(route.handler) | Answers(APP).of(refuse_bad_head)
    if hasattr(route.handler, "__wrapped__"):
        # Read through functools.wraps to the handler: what idempotent() adds.
        statuses |= Answers(APP).of(idempotent)
    if path.startswith("/api/") and path not in PUBLIC_ROUTES:
        # auth_middleware: the token, the Better Auth keys, the per-user limit
        statuses |= {401, 429, 503}
    return statuses


def documented(route: web.AbstractRoute) -> set[int]:
    operation = DOCUMENT["paths"][route.resource.canonical][route.method.lower()]
    return {int(status) for status in operation["responses"]}


def under_other_mounts(route: web.AbstractRoute) -> set[int]:
    """What the handler's other mounts add (the 403 of /api/{user_id}/tasks):
    the reader cannot tell that those statuses depend on the path."""
    op = declared(route.handler)
    path = route.resource.canonical
    return {
        status
        for mount in (op.mounts if op else ())
        if not (path == mount.prefix or path.startswith(mount.prefix + "/"))
        for status in mount.problems
    }


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.resource.canonical}")
def test_every_status_a_handler_can_answer_is_documented(route):
    assert answered(route) - under_other_mounts(route) - documented(route) == set()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.resource.canonical}")
def test_every_documented_error_is_one_the_handler_can_answer(route):
    errors_documented = {status for status in documented(route) if status >= 400}
    assert errors_documented - answered(route) == set()


def test_the_reader_finds_what_the_handlers_raise():
    """The reader itself, on known cases: a status it stopped seeing would
    make the test above pass for nothing."""
    by_operation = {
        (r.method, r.resource.canonical): answered(r) for r in ROUTES if r.resource is not None
    }
    assert by_operation[("POST", "/api/auth/signup")] >= {400, 409, 413, 415, 422, 201, 503}
    assert by_operation[("POST", "/api/auth/signin")] >= {401, 422, 429, 503}
    assert by_operation[("POST", "/api/auth/signup")] >= {429}
    assert by_operation[("GET", "/api/tasks")] >= {401, 422, 503}  # the cursor codec's 422 too
    assert by_operation[("PATCH", "/api/{user_id}/tasks/{id}/complete")] >= {403, 404, 412}
    assert by_operation[("GET", "/api/tasks/{id}")] >= {304, 404}
    assert by_operation[("GET", "/ready")] == {400, 503}
    # The bounded bcrypt queue's 503, read through the app's password hasher.
    hasher = APP[keys.PASSWORDS]
    assert Answers(APP).of(type(hasher).hash, type(hasher)) == {503}
    assert Answers(APP).of(type(hasher).check, type(hasher)) == {503}
    assert by_operation[("GET", "/docs/{asset}")] == {400, 404}
