"""The OpenAPI document: valid, equal to the router both ways, and saying
what the validators say."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from service.app import create_app
from service.auth.schemas import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from service.tasks.schemas import DESCRIPTION_MAX, LIMIT_MAX, SORTS, TITLE_MAX, TaskPatchSchema
from tests.conftest import make_settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
async def spec(client) -> dict:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    return await resp.json()


async def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)


def router_pairs(app) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.router.routes():
        if route.method == "*":
            continue
        pairs.add((route.method.lower(), route.resource.canonical))
    return pairs


async def test_the_document_and_the_router_have_the_same_operations(spec):
    app = create_app(make_settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"))
    documented = {
        (method, path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in METHODS
    }
    routed = router_pairs(app)
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented operations with no route"


def operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in METHODS:
                yield path, method, op


async def test_every_error_is_a_problem_document_and_every_response_has_a_request_id(spec):
    for path, method, op in operations(spec):
        for status, response in op["responses"].items():
            assert "X-Request-ID" in response.get("headers", {}), (path, method, status)
            if int(status) >= 400:
                content = response["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)


async def test_protected_operations_declare_401_and_bearer_security(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    public = {
        "/health",
        "/ready",
        "/api/auth/signup",
        "/api/auth/signin",
        "/openapi.json",
        "/docs",
        "/docs/{asset}",
        "/metrics",
    }
    for path, method, op in operations(spec):
        if path in public:
            assert op["security"] == [], path
        else:
            assert "security" not in op  # the global bearerAuth applies
            assert "401" in op["responses"], (path, method)
            assert "503" in op["responses"], (path, method)


async def test_both_kinds_of_bearer_token_are_described(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["betterAuth"]["scheme"] == schemes["bearerAuth"]["scheme"] == "bearer"
    assert "jwks" in schemes["betterAuth"]["description"]
    assert spec["security"] == [{"bearerAuth": []}, {"betterAuth": []}]  # either one
    # A Better Auth user id is not a UUID: the path must not say it is.
    user_ids = [
        parameter
        for _, _, op in operations(spec)
        for parameter in op.get("parameters", [])
        if parameter["name"] == "user_id"
    ]
    assert len(user_ids) == 7  # every operation under /api/{user_id}/tasks
    for parameter in user_ids:
        assert "format" not in parameter["schema"]
        assert "Better Auth" in parameter["description"]


async def test_conditional_writes_document_412_and_etag(spec):
    for prefix in ("/api/tasks", "/api/{user_id}/tasks"):
        for path, method in [
            (f"{prefix}/{{id}}", "put"),
            (f"{prefix}/{{id}}", "patch"),
            (f"{prefix}/{{id}}/complete", "patch"),
            (f"{prefix}/{{id}}", "delete"),
        ]:
            op = spec["paths"][path][method]
            assert "412" in op["responses"]
            assert any(p["name"] == "If-Match" for p in op["parameters"])
        get = spec["paths"][f"{prefix}/{{id}}"]["get"]
        assert "304" in get["responses"]
        assert "ETag" in get["responses"]["200"]["headers"]
        create = spec["paths"][prefix]["post"]["responses"]["201"]["headers"]
        assert {"Location", "ETag"} <= set(create)
        listing = spec["paths"][prefix]["get"]["responses"]["200"]["headers"]
        assert "Link" in listing
    for path in ("/api/{user_id}/tasks", "/api/{user_id}/tasks/{id}"):
        for _, op in spec["paths"][path].items():
            assert "403" in op["responses"]


async def test_the_constraints_match_the_validators(spec):
    schemas = spec["components"]["schemas"]
    task = schemas["TaskCreate"]["properties"]
    assert (task["title"]["minLength"], task["title"]["maxLength"]) == (1, TITLE_MAX)
    assert task["description"]["maxLength"] == DESCRIPTION_MAX
    assert task["description"]["nullable"] is True
    assert task["completed"]["type"] == "boolean"
    assert schemas["TaskCreate"]["additionalProperties"] is False
    assert schemas["TaskCreate"]["required"] == ["title"]
    assert schemas["TaskReplace"]["required"] == ["title"]
    assert "required" not in schemas["TaskPatch"]
    assert len(schemas["TaskPatch"]["anyOf"]) == len(TaskPatchSchema().load_fields)
    for name in ("id", "user_id", "created_at", "updated_at"):
        assert task[name]["readOnly"] is True
    signup = schemas["Signup"]["properties"]
    assert signup["email"]["format"] == "email"
    assert signup["email"]["maxLength"] == EMAIL_MAX
    assert (signup["password"]["minLength"], signup["password"]["maxLength"]) == (
        PASSWORD_MIN,
        PASSWORD_MAX,
    )
    assert signup["name"]["maxLength"] == NAME_MAX
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/tasks"]["get"]["parameters"]}
    assert params["sort"]["enum"] == list(SORTS)
    assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, LIMIT_MAX)
    assert params["completed"]["type"] == "boolean"


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("", True),
        (" ", True),
        ("\t\n\r\x0b\x0c", True),
        ("\x1c\x1f\x85", True),
        ("\u3000\ufeff\xa0", True),
        ("a", False),
        ("  a  ", False),
        ("a\x00", True),
        ("\x00", True),
        # Control characters and line breaks, even beside visible text.
        ("a\tb", True),
        ("a\nb", True),
        ("a\x7f", True),
        ("a\x9b", True),
        ("a\u2028b", True),
        # Only invisible: zero-width, bidi controls, fillers, soft hyphen.
        ("\u200b", True),
        ("\u200e\u200f\u202e", True),
        ("\u3164\u115f\uffa0", True),
        ("\u00ad\u2060\u180e", True),
        ("\u2800", True),
        ("\ufe0f", True),
        # Visible text with joiners and marks inside is fine.
        ("\U0001f469\u200d\U0001f4bb Ann", False),
        ("e\u0301", False),
        ("\u05e9\u05dc\u05d5\u05dd\u200f", False),
        ("\u2764\ufe0f", False),
    ],
)
async def test_the_line_pattern_agrees_with_the_validator(spec, text, refused):
    from service.schemas import Text

    for schema, prop in (("TaskCreate", "title"), ("Signup", "name")):
        pattern = spec["components"]["schemas"][schema]["properties"][prop]["pattern"]
        assert (re.match(pattern, text) is None) is refused, (schema, text)
    field = Text(line=True)
    try:
        field.deserialize(text)
        accepted = True
    except Exception:
        accepted = False
    assert accepted is (not refused)
