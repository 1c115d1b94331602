"""The OpenAPI document: valid, equal to the router both ways, and saying
what the validators say."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from marshmallow import ValidationError
from openapi_spec_validator import validate

from service.app import create_app
from service.auth.schemas import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from service.docs.operation import declared
from service.tasks.schemas import DESCRIPTION_MAX, LIMIT_MAX, SORTS, TITLE_MAX, TaskPatchSchema
from tests.conftest import make_settings

NODE = shutil.which("node") or "node"
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
    assert len(user_ids) == 9  # every operation under /api/{user_id}/tasks
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


# (value, taken in a body, taken in a query string): RFC 3339 date-times
# with an offset, years 0002 to 9998, as JSON Schema's `date-time` reads
# RFC 3339 (T and Z in either case), and the forms datetime.fromisoformat
# reads besides, which are refused. In a query string a space may stand for
# the `+` of the offset (a `+` not percent-encoded).
MOMENTS = [
    ("2027-03-01T09:30:00Z", True, True),
    ("2027-03-01T09:30:00+01:00", True, True),
    ("2027-03-01T09:30:00-05:30", True, True),
    ("2027-03-01T09:30:00-00:00", True, True),
    ("2027-03-01T09:30:00+23:59", True, True),
    ("2027-03-01T09:30:00.5Z", True, True),
    ("2027-03-01T09:30:00.123456789+02:00", True, True),
    ("2027-03-01t09:30:00z", True, True),
    ("2027-03-01T23:59:59Z", True, True),
    ("2028-02-29T00:00:00Z", True, True),
    ("2000-02-29T00:00:00Z", True, True),
    ("0002-01-01T00:00:00+14:00", True, True),
    ("9998-12-31T23:59:59-12:00", True, True),
    ("2027-03-01T09:30:00 01:00", False, True),
    ("20270301T093000Z", False, False),  # basic format
    ("2027-W09-1T09:30:00Z", False, False),  # week date
    ("2027-060T09:30:00Z", False, False),  # ordinal date
    ("2027-03-01 09:30:00Z", False, False),  # space for the T
    ("2027-03-01_09:30:00Z", False, False),
    ("2027-03-01T09:30:00", False, False),  # no offset
    ("2027-03-01T09:30Z", False, False),  # no seconds
    ("2027-03-01T09Z", False, False),
    ("2027-03-01", False, False),
    ("2027-03-01T09:30:00+0100", False, False),
    ("2027-03-01T09:30:00+01", False, False),
    ("2027-03-01T09:30:00 0100", False, False),
    ("2027-03-01T09:30:00+24:00", False, False),
    ("2027-03-01T09:30:00,5Z", False, False),
    ("2027-03-01T09:30:00.Z", False, False),
    ("2027-03-01T24:00:00Z", False, False),
    ("2027-03-01T09:60:00Z", False, False),
    ("2016-12-31T23:59:60Z", False, False),  # a leap second: Python cannot hold it
    ("2027-02-29T00:00:00Z", False, False),
    ("2100-02-29T00:00:00Z", False, False),
    ("2027-04-31T00:00:00Z", False, False),
    ("2027-13-01T00:00:00Z", False, False),
    ("2027-00-10T00:00:00Z", False, False),
    ("0000-01-01T00:00:00Z", False, False),
    ("0001-12-31T23:59:59Z", False, False),
    ("9999-01-01T00:00:00Z", False, False),
    ("+02027-03-01T09:30:00Z", False, False),
    ("\u0662\u0660\u0662\u0667-03-01T09:30:00Z", False, False),  # Arabic-Indic digits
    ("2027-03-01T09:30:00Z\n", False, False),
    (" 2027-03-01T09:30:00Z", False, False),
    ("2027-03-01T09:30:00ZZ", False, False),
    ("2027-03-01T09:30:00UTC", False, False),
    ("", False, False),
]


def _input_moments(spec) -> list[tuple[str, str, str, Any]]:
    """(where, name, pattern, validating field) for every timestamp a
    request can carry: body properties and parameters of `date-time`
    format that are not read-only, in every operation."""
    app = create_app(make_settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"))
    handlers = {
        (route.method.lower(), route.resource.canonical): declared(route.handler)
        for route in app.router.routes()
        if route.method not in ("OPTIONS", "*")
    }
    found = []
    for path, method, op in operations(spec):
        declaration = handlers[method, path]
        for parameter in op.get("parameters", []):
            schema = parameter["schema"]
            if schema.get("format") == "date-time":
                field = declaration.query().fields[parameter["name"]]
                found.append((f"{method} {path} ?", parameter["name"], schema["pattern"], field))
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        component = spec["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
        for name, schema in component["properties"].items():
            if schema.get("format") == "date-time" and not schema.get("readOnly"):
                field = declaration.body().fields[name]
                found.append((f"{method} {path} body", name, schema["pattern"], field))
    return found


def _ecma_verdicts(patterns: list[str], strings: list[str]) -> list[list[bool]]:
    """Each pattern tested on each string by node's RegExp, as the
    ECMA-262 dialect OpenAPI names (with the `u` flag, as ajv compiles)."""
    script = (
        "const {patterns, strings} = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map("
        "p => { const r = new RegExp(p, 'u'); return strings.map(s => r.test(s)); })));"
    )
    done = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps({"patterns": patterns, "strings": strings}),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _accepts(field, value: str) -> bool:
    try:
        field.deserialize(value)
    except ValidationError:
        return False
    return True


async def test_every_timestamp_pattern_says_what_its_validator_does(spec):
    """Every timestamp field of every operation publishes a pattern that,
    with `format: date-time` as the validators schemathesis and jsonschema
    use read it, takes exactly the strings the service's validator takes;
    read as ECMA-262 (node) and as Python reads an ECMA pattern alike. In a
    query string the document speaks of the value as sent: a space where
    the offset's sign goes is a `+` that a form decoding made a space."""
    found = _input_moments(spec)
    names = {(where.split()[-1], name) for where, name, _, _ in found}
    assert names == {
        ("body", "due_at"),
        ("body", "remind_at"),
        ("?", "due_after"),
        ("?", "due_before"),
    }
    # create, put and patch, listing: both mounts each
    assert len(found) == 3 * 2 * 2 + 2 * 2
    strings = [value for value, _, _ in MOMENTS]
    sent = [re.sub(r" (?=[0-9]{2}:[0-9]{2}$)", "+", value) for value in strings]
    # Every pattern of the document, so node compiles each one: a pattern only
    # Python reads would fail every client generator and the fuzzer.
    patterns = sorted(set(_patterns(spec)))
    assert {pattern for _, _, pattern, _ in found} <= set(patterns)
    ecma = dict(zip(patterns, _ecma_verdicts(patterns, strings + sent), strict=True))
    rust_format = jsonschema_rs.validator_for(
        {"type": "string", "format": "date-time"}, validate_formats=True
    )
    python_format = jsonschema.FormatChecker()
    assert not python_format.conforms("tomorrow", "date-time")  # it really checks
    for where, name, pattern, field in found:
        in_query = where.endswith("?")
        python = re.compile(pattern.removesuffix("$") + r"\Z", re.ASCII)
        by_node = dict(zip(strings + sent, ecma[pattern], strict=False))
        for (value, in_body_ok, in_query_ok), as_sent in zip(MOMENTS, sent, strict=True):
            expected = in_query_ok if in_query else in_body_ok
            assert _accepts(field, value) is expected, (where, name, value)
            meant = as_sent if in_query else value
            assert (python.match(meant) is not None) is by_node[meant], (pattern, meant)
            assert (by_node[meant] and rust_format.is_valid(meant)) is expected, (where, meant)
            assert (by_node[meant] and python_format.conforms(meant, "date-time")) is expected


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []
