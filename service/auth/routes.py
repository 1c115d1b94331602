"""POST /api/auth/signup, POST /api/auth/signin, GET and PATCH /api/auth/me."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service import constraints, keys
from service.auth.schemas import (
    RenameSchema,
    SessionSchema,
    SigninSchema,
    SignupSchema,
    UserSchema,
    user_json,
)
from service.docs.operation import DATABASE, JSON_BODY, Answer, operation
from service.errors import AccountGone, Unauthorized
from service.jsonio import json_response, read_json

routes = web.RouteTableDef()

SIGNUP = SignupSchema()
SIGNIN = SigninSchema()
RENAME = RenameSchema()
BAD_CREDENTIALS = "The email or password is incorrect."
# Both routes hash or check a password: their 503 is the bounded bcrypt
# queue too (service/auth/passwords.py).
HASHING_503 = (
    "Too many sign-ins and sign-ups are waiting for password hashing (answered at once), "
    "or the database or the rate-limit storage is unreachable; retry after Retry-After."
)
# Token responses must not be cached (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _session(request: web.Request, user: Any) -> dict[str, Any]:
    tokens = request.app[keys.TOKENS]
    return {
        "user": user_json(user),
        "access_token": tokens.issue(user["id"]),
        "token_type": "bearer",
        "expires_in": tokens.ttl,
    }


@routes.post("/api/auth/signup")
@operation(
    tag="auth",
    body=SignupSchema,
    ok={201: Answer("Signed up.", SessionSchema, headers=("Location",))},
    problems=(*JSON_BODY, *constraints.statuses("create_user"), 429, DATABASE),
    notes={
        409: "The email is already registered (any letter case).",
        429: "Too many sign-up and sign-in attempts from this client address.",
        503: HASHING_503,
    },
)
async def signup(request: web.Request) -> web.Response:
    """Create an account and get a session."""
    await request.app[keys.RATE_LIMITS].count_auth_attempt(request[keys.CLIENT])
    passwords = request.app[keys.PASSWORDS]
    # A full bcrypt queue answers before any other work, the password estimate included.
    passwords.refuse_when_full("hash")
    data = SIGNUP.load(await read_json(request))
    password_hash = await passwords.hash(data["password"])
    user = await request.app[keys.DB].one(
        "create_user", email=data["email"], password_hash=password_hash, name=data["name"]
    )
    return json_response(
        _session(request, user), status=201, headers={**NO_STORE, "Location": "/api/auth/me"}
    )


@routes.post("/api/auth/signin")
@operation(
    tag="auth",
    body=SigninSchema,
    ok={200: Answer("Signed in.", SessionSchema)},
    problems=(*JSON_BODY, 401, 429, DATABASE),
    notes={
        401: "The email or password is incorrect.",
        429: (
            "Too many sign-in attempts from this client address, or too many failed "
            "sign-ins for this account: until the window passes, even the right password "
            "is refused."
        ),
        503: HASHING_503,
    },
)
async def signin(request: web.Request) -> web.Response:
    """Sign in with email and password."""
    limits = request.app[keys.RATE_LIMITS]
    client = request[keys.CLIENT]
    await limits.count_auth_attempt(client)
    passwords = request.app[keys.PASSWORDS]
    passwords.refuse_when_full("check")  # before the body and the database
    data = SIGNIN.load(await read_json(request))
    await limits.count_signin(data["email"], client)  # a locked account stops here
    user = await request.app[keys.DB].one("get_user_for_signin", email=data["email"])
    # Unknown email and wrong password: same work, same status, same body.
    ok = await passwords.check(data["password"], user["password_hash"] if user else None)
    if not ok:
        limits.signin_failed(data["email"], client)
        raise Unauthorized(BAD_CREDENTIALS, slug="invalid-credentials", title="Sign-in failed")
    await limits.signed_in(data["email"])
    return json_response(_session(request, user), headers=NO_STORE)


@routes.get("/api/auth/me", allow_head=False)
@operation(
    tag="auth",
    ok={200: Answer("The user.", UserSchema)},
    problems=(401, DATABASE),
)
async def me(request: web.Request) -> web.Response:
    """The signed-in user."""
    user = await request.app[keys.DB].one("get_user_by_id", id=request[keys.USER_ID])
    if user is None:  # a validly signed token for an account that is gone
        raise AccountGone()
    return json_response(user_json(user))


@routes.patch("/api/auth/me")
@operation(
    tag="auth",
    body=RenameSchema,
    ok={200: Answer("The user, renamed.", UserSchema)},
    problems=(*JSON_BODY, 401, DATABASE),
)
async def rename(request: web.Request) -> web.Response:
    """Change the signed-in user's name (a Better Auth account's too: the
    name here is this service's copy)."""
    data = RENAME.load(await read_json(request))
    user = await request.app[keys.DB].one(
        "rename_user", id=request[keys.USER_ID], name=data["name"]
    )
    if user is None:
        raise AccountGone()
    return json_response(user_json(user))
