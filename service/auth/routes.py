"""Accounts and sessions: sign-up, sign-in, sign-out, the signed-in user
(read, rename, delete) and the password change."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aiohttp import web

from service import constraints, keys
from service.auth.schemas import (
    DeleteAccountSchema,
    PasswordChangeSchema,
    RenameSchema,
    SessionSchema,
    SigninSchema,
    SignoutSchema,
    SignupSchema,
    UserSchema,
    user_json,
)
from service.auth.strength import weak_password_reason
from service.docs.operation import DATABASE, JSON_BODY, Answer, operation
from service.errors import (
    AccountGone,
    ManagedByBetterAuth,
    Unauthorized,
    Unprocessable,
    WrongPassword,
)
from service.jsonio import has_body, json_response, read_json
from service.middlewares import public_url

routes = web.RouteTableDef()

SIGNUP = SignupSchema()
SIGNIN = SigninSchema()
RENAME = RenameSchema()
SIGNOUT = SignoutSchema()
PASSWORD_CHANGE = PasswordChangeSchema()
DELETE_ACCOUNT = DeleteAccountSchema()
BAD_CREDENTIALS = "The email or password is incorrect."
# The routes that hash or check a password: their 503 is the bcrypt queue too.
HASHING_503 = (
    "Too many sign-ins and sign-ups are waiting for password hashing (the client address "
    "holding most of the queue is refused first), or the database or the rate-limit "
    "storage is unreachable; retry after Retry-After."
)
CHECKS_429 = (
    "Too many password checks from this client address (or its IPv6 /48), or "
    "too many wrong passwords for this account."
)
# Token responses must not be cached (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
auth_operation = functools.partial(operation, tag="auth")


def _optional_body(body: Any, done: str, **declared: Any) -> Callable[[Any], Any]:
    """The operation of a route whose JSON body may be left out, answering 204 `done`."""
    return auth_operation(body=body, body_required=False, ok={204: Answer(done)}, **declared)


def _session(request: web.Request, user: Any, session_id: Any) -> dict[str, Any]:
    tokens = request.app[keys.TOKENS]
    return {
        "user": user_json(user),
        "access_token": tokens.issue(user["id"], session_id),
        "token_type": "bearer",
        "expires_in": tokens.ttl,
    }


async def _account(request: web.Request) -> Any:
    account = await request.app[keys.DB].one("get_user_by_id", id=request[keys.USER_ID])
    if account is None:  # a validly signed token for an account that is gone
        raise AccountGone()
    return account


@routes.post("/api/auth/signup")
@auth_operation(
    body=SignupSchema,
    ok={201: Answer("Signed up.", SessionSchema, headers=("Location",))},
    problems=(*JSON_BODY, *constraints.statuses("create_user"), 429, DATABASE),
    notes={
        409: "The email is already registered (any letter case).",
        429: "Too many sign-up and sign-in attempts from this client address "
        "(`RATE_LIMIT_AUTH_PER_IP`; an IPv6 client by its /64), or from its IPv6 /48 "
        "(`RATE_LIMIT_AUTH_PER_IPV6_48`).",
        503: HASHING_503,
    },
)
async def signup(request: web.Request) -> web.Response:
    """Create an account and get a session."""
    await request.app[keys.RATE_LIMITS].count_auth_attempt(request[keys.CLIENT])
    passwords = request.app[keys.PASSWORDS]
    # A full bcrypt queue answers before any other work, the password estimate included.
    passwords.refuse_when_full("hash", request[keys.CLIENT])
    data = SIGNUP.load(await read_json(request))
    password_hash = await passwords.hash(data["password"], request[keys.CLIENT])
    user = await request.app[keys.DB].one(
        "create_user",
        email=data["email"],
        password_hash=password_hash,
        name=data["name"],
        ttl_seconds=request.app[keys.TOKENS].ttl,
    )
    return json_response(
        _session(request, user, user["session_id"]),
        status=201,
        headers={**NO_STORE, "Location": public_url(request, "/api/auth/me")},
    )


@routes.post("/api/auth/signin")
@auth_operation(
    body=SigninSchema,
    ok={200: Answer("Signed in.", SessionSchema)},
    problems=(*JSON_BODY, 401, 429, DATABASE),
    notes={
        401: "The email or password is incorrect.",
        429: (
            "Too many sign-in attempts from this client address (`RATE_LIMIT_AUTH_PER_IP`; "
            "an IPv6 client by its /64) or from its IPv6 /48 (`RATE_LIMIT_AUTH_PER_IPV6_48`), "
            "or too many failed sign-ins for this account (`RATE_LIMIT_SIGNIN_FAILURES`): "
            "until the window passes, even the right password is refused."
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
    passwords.refuse_when_full("check", client)  # before the body and the database
    data = SIGNIN.load(await read_json(request))
    found = await request.app[keys.DB].one("get_user_for_signin", email=data["email"])
    # The lockout counts the account, or the database's form of an unknown email.
    account = limits.account(found["id"], found["email_key"])
    # Unknown email (no hash) and wrong password: same work, same status, same body.
    if not await _password_matches(request, account, data["password"], found["password_hash"]):
        raise Unauthorized(BAD_CREDENTIALS, slug="invalid-credentials", title="Sign-in failed")
    session_id = await request.app[keys.DB].val(
        "create_session", user_id=found["id"], ttl_seconds=request.app[keys.TOKENS].ttl
    )
    return json_response(_session(request, found, session_id), headers=NO_STORE)


@routes.get("/api/auth/me", allow_head=False)
@auth_operation(
    ok={200: Answer("The user.", UserSchema)},
    problems=(401, DATABASE),
)
async def me(request: web.Request) -> web.Response:
    """The signed-in user."""
    return json_response(user_json(await _account(request)))


@routes.patch("/api/auth/me")
@auth_operation(
    body=RenameSchema,
    ok={200: Answer("The user, renamed.", UserSchema)},
    problems=(*JSON_BODY, 401, DATABASE),
)
async def rename(request: web.Request) -> web.Response:
    """Change the signed-in user's name (a Better Auth account's too: the
    name here is this service's copy)."""
    name = RENAME.load(await read_json(request))["name"]
    user = await request.app[keys.DB].one("rename_user", id=request[keys.USER_ID], name=name)
    if user is None:
        raise AccountGone()
    return json_response(user_json(user))


@routes.post("/api/auth/signout")
@_optional_body(
    SignoutSchema,
    "Signed out.",
    problems=(*JSON_BODY, DATABASE),
    notes={401: "No valid token, or it was already signed out."},
    description=(
        'Ends the presented token\'s session, or with `{"everywhere": true}` every '
        "session of the account. Those tokens are then refused (401, "
        "`session-ended`) by every worker and replica within a second. With a "
        "Better Auth token: ends that token (until its `exp`), or with "
        '`{"everywhere": true}` every token of the account issued up to this '
        "second (by `iat`); tokens Better Auth issues later work. A frontend calls "
        "it beside `authClient.signOut()`."
    ),
)
async def signout(request: web.Request) -> web.Response:
    """Sign out."""
    everywhere = (
        SIGNOUT.load(await read_json(request))["everywhere"] if has_body(request) else False
    )
    token = request[keys.TOKEN]  # a Better Auth token has no session here
    user_id = request[keys.USER_ID]
    tokens = request.app[keys.TOKENS]
    db = request.app[keys.DB]
    if not everywhere:
        if token.session is None:
            await db.exec(
                "end_better_auth_token", token_digest=token.digest, expires_at=token.expires
            )
        else:
            await db.exec("end_session", id=token.session, user_id=user_id)
        tokens.ended_token(token)
    elif token.session is None:
        up_to = await db.val("end_better_auth_tokens", user_id=user_id)
        if up_to is None:
            raise AccountGone()
        tokens.ended_better_auth_user(user_id, up_to)
    else:
        await db.exec("end_all_sessions", user_id=user_id)
        tokens.ended_user(user_id)
    return web.Response(status=204)


async def _password_matches(
    request: web.Request, account: str, password: str, hashed: str | None
) -> bool:
    """Check `password` against `hashed`, counted against lockout key `account`
    (a locked account stops here): a failure stays counted; a match clears them."""
    limits = request.app[keys.RATE_LIMITS]
    client = request[keys.CLIENT]
    await limits.count_signin(account, client)
    if not await request.app[keys.PASSWORDS].check(password, hashed, client):
        limits.signin_failed(account, client)
        return False
    await limits.signed_in(account)
    return True


async def _check_password(request: web.Request, account: Any, password: str) -> None:
    """WrongPassword unless `password` is the account's: counted like a sign-in."""
    limits = request.app[keys.RATE_LIMITS]
    client = request[keys.CLIENT]
    await limits.count_auth_attempt(client)
    request.app[keys.PASSWORDS].refuse_when_full("check", client)
    key = limits.account(account["id"])  # sign-in's key for this account
    if not await _password_matches(request, key, password, account["password_hash"]):
        raise WrongPassword()


@routes.put("/api/auth/password")
@auth_operation(
    description=(
        "Checks `current_password` (a wrong one is 403 and counts like a failed "
        "sign-in), then sets `new_password` under sign-up's rules. Every token of the "
        "account, this one included, is refused within a second; the answer is a new "
        "session whose token replaces them."
    ),
    body=PasswordChangeSchema,
    ok={
        200: Answer("Changed: a new session; every other token of the account ends.", SessionSchema)
    },
    problems=(*JSON_BODY, 403, 429, DATABASE),
    notes={
        403: "current_password is wrong, or the account signs in with Better Auth "
        "(its password lives there).",
        429: CHECKS_429,
        503: HASHING_503,
    },
)
async def change_password(request: web.Request) -> web.Response:
    """Change the password."""
    data = PASSWORD_CHANGE.load(await read_json(request))
    account = await _account(request)
    if account["password_hash"] is None:
        raise ManagedByBetterAuth("change the password")
    reason = weak_password_reason(data["new_password"], account["email"], account["name"])
    if reason:
        raise Unprocessable({"new_password": [reason]})
    await _check_password(request, account, data["current_password"])
    new_hash = await request.app[keys.PASSWORDS].hash(data["new_password"], request[keys.CLIENT])
    tokens = request.app[keys.TOKENS]
    user = await request.app[keys.DB].one(
        "change_password",
        id=account["id"],
        old_hash=account["password_hash"],
        new_hash=new_hash,
        ttl_seconds=tokens.ttl,
    )
    if user is None:  # changed (or deleted) since the check: that password is no longer current
        raise WrongPassword()
    tokens.ended_user(user["id"])
    return json_response(_session(request, user, user["session_id"]), headers=NO_STORE)


@routes.delete("/api/auth/me")
@_optional_body(
    DeleteAccountSchema,
    "Deleted, with every task.",
    problems=(*JSON_BODY, 403, 429, DATABASE),
    notes={
        400: "A password account sent no body: its password is required.",
        403: "The password is wrong.",
        429: CHECKS_429,
        503: HASHING_503,
    },
    description=(
        "The account, its tasks and its sessions are deleted in one transaction, and "
        'the email is free again. A password account sends `{"password"}`; a Better '
        "Auth account sends no body, and only what is stored here is deleted: the "
        "person stays signed in at Better Auth, its tokens issued until now are "
        "refused, and one it issues later makes a new, empty account."
    ),
)
async def delete_me(request: web.Request) -> web.Response:
    """Delete the account and all its tasks."""
    account = await _account(request)
    if account["password_hash"] is not None:
        password = DELETE_ACCOUNT.load(await read_json(request))["password"]
        await _check_password(request, account, password)
    deleted = await request.app[keys.DB].val(
        "delete_user", id=account["id"], password_hash=account["password_hash"]
    )
    if deleted is None:  # the password changed (or the account went) since the check
        raise WrongPassword()
    request.app[keys.TOKENS].ended_user(account["id"])
    return web.Response(status=204)
