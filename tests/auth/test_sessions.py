"""Sessions and the account's life, against the real database: sign-out (one
session, or everywhere), password change, account deletion, and emails that
are one address in any Unicode form."""

from __future__ import annotations

import psycopg
import pytest

from service.app import create_app
from tests.conftest import make_settings
from tests.helpers import (
    PASSWORD,
    SHORT_PASSWORD,
    TASKS,
    assert_session_ended,
    bearer,
    make_task,
    problem,
    signup,
)

ME = "/api/auth/me"
SIGNIN = "/api/auth/signin"
SIGNOUT = "/api/auth/signout"
PASSWORD_ROUTE = "/api/auth/password"
NEW_PASSWORD = "tangerine orbit"


async def signin(client, email="ann@example.com", password=PASSWORD) -> str:
    resp = await client.post(SIGNIN, json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["access_token"]


async def status(client, token: str, path: str = TASKS) -> int:
    return (await client.get(path, headers=bearer(token))).status


def rows(url: str, sql: str, *args) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchone()[0]


# --- sign-out ------------------------------------------------------------------


async def test_signing_out_ends_this_session_and_another_keeps_working(client):
    laptop = (await signup(client))["access_token"]
    phone = await signin(client)
    assert await status(client, laptop) == 200
    assert await status(client, phone) == 200

    resp = await client.post(SIGNOUT, headers=bearer(laptop))
    assert resp.status == 204
    assert await resp.read() == b""

    await assert_session_ended(client, laptop)
    assert (await client.get(ME, headers=bearer(laptop))).headers["WWW-Authenticate"]
    assert await status(client, phone) == 200
    # Signed out already: the token no longer signs anything out.
    await problem(await client.post(SIGNOUT, headers=bearer(laptop)), 401)


async def test_signing_out_everywhere_ends_every_session(client, migrated_database):
    first = (await signup(client))["access_token"]
    others = [await signin(client) for _ in range(3)]
    bob = (await signup(client, email="bob@example.com"))["access_token"]

    resp = await client.post(SIGNOUT, json={"everywhere": True}, headers=bearer(others[0]))
    assert resp.status == 204
    for token in [first, *others]:
        await problem(await client.get(TASKS, headers=bearer(token)), 401)
    assert await status(client, bob) == 200  # another account's sessions stay
    assert rows(migrated_database, "SELECT count(*) FROM sessions") == 1
    # Signing in again works.
    assert await status(client, await signin(client)) == 200


async def test_signing_out_with_everywhere_false_ends_only_this_one(client):
    first = (await signup(client))["access_token"]
    second = await signin(client)
    resp = await client.post(SIGNOUT, json={"everywhere": False}, headers=bearer(first))
    assert resp.status == 204
    await problem(await client.get(TASKS, headers=bearer(first)), 401)
    assert await status(client, second) == 200


@pytest.mark.parametrize(
    "body",
    [{"everywhere": "yes"}, {"everywhere": None}, {"all": True}, [], "x"],
)
async def test_signout_refuses_a_bad_body_and_ends_nothing(client, body):
    token = (await signup(client))["access_token"]
    await problem(await client.post(SIGNOUT, json=body, headers=bearer(token)), 422)
    assert await status(client, token) == 200


async def test_signout_needs_a_token(client):
    await problem(await client.post(SIGNOUT), 401)


async def test_sign_ins_clean_up_expired_sessions_ten_at_a_time(client, migrated_database):
    """No cron job: each new session deletes up to 10 expired ones, oldest
    first, and never a live one."""
    body = await signup(client)
    with psycopg.connect(migrated_database) as conn:
        conn.execute(
            "INSERT INTO sessions (user_id, created_at, expires_at) "
            "SELECT %s, now() - interval '2 days', now() - g * interval '1 minute' "
            "FROM generate_series(1, 15) AS g",
            (body["user"]["id"],),
        )
    await signin(client)
    expired = "SELECT count(*) FROM sessions WHERE expires_at < now()"
    assert rows(migrated_database, expired) == 5
    oldest_left = "SELECT count(*) FROM sessions WHERE expires_at < now() - interval '330 s'"
    assert rows(migrated_database, oldest_left) == 0  # the oldest went first
    await signin(client)
    assert rows(migrated_database, expired) == 0
    assert rows(migrated_database, "SELECT count(*) FROM sessions") == 3  # the live ones
    assert await status(client, body["access_token"]) == 200


# --- password change -------------------------------------------------------------


async def test_changing_the_password(client):
    old = (await signup(client))["access_token"]
    other = await signin(client)

    resp = await client.put(
        PASSWORD_ROUTE,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(old),
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    session = await resp.json()
    assert session["user"]["email"] == "ann@example.com"
    assert session["token_type"] == "bearer"

    for token in (old, other):  # every older token ends, this request's too
        await problem(await client.get(TASKS, headers=bearer(token)), 401)
    assert await status(client, session["access_token"]) == 200
    bad = await client.post(SIGNIN, json={"email": "ann@example.com", "password": PASSWORD})
    await problem(bad, 401)
    assert await status(client, await signin(client, password=NEW_PASSWORD)) == 200


async def test_a_wrong_current_password_is_403_and_changes_nothing(client):
    token = (await signup(client))["access_token"]
    resp = await client.put(
        PASSWORD_ROUTE,
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    body = await problem(resp, 403)
    assert body["type"].endswith("/wrong-password")
    assert await status(client, token) == 200
    assert await status(client, await signin(client)) == 200


@pytest.mark.parametrize(
    ("new", "why"),
    [
        ("password", "common"),
        ("aaaaaaaa", "guess"),
        ("ann@example.com", "email"),
        ("short", "8"),
        ("x" * 257, "256"),
    ],
)
async def test_a_weak_new_password_is_422_and_changes_nothing(client, new, why):
    token = (await signup(client))["access_token"]
    resp = await client.put(
        PASSWORD_ROUTE,
        json={"current_password": PASSWORD, "new_password": new},
        headers=bearer(token),
    )
    body = await problem(resp, 422)
    assert why in " ".join(body["errors"]["new_password"]).lower()
    assert await status(client, token) == 200
    assert await status(client, await signin(client)) == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": 1, "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": 1},
    ],
)
async def test_a_password_change_with_a_bad_body_is_422(client, body):
    token = (await signup(client))["access_token"]
    await problem(await client.put(PASSWORD_ROUTE, json=body, headers=bearer(token)), 422)
    assert await status(client, token) == 200


async def test_wrong_current_passwords_lock_the_account_like_sign_ins(
    aiohttp_client, migrated_database
):
    settings = make_settings(DATABASE_URL=migrated_database, RATE_LIMIT_SIGNIN_FAILURES="2/hour")
    client = await aiohttp_client(create_app(settings))
    token = (await signup(client))["access_token"]
    wrong = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
    for _ in range(2):
        await problem(await client.put(PASSWORD_ROUTE, json=wrong, headers=bearer(token)), 403)
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    await problem(await client.put(PASSWORD_ROUTE, json=right, headers=bearer(token)), 429)


# --- account deletion --------------------------------------------------------------


async def test_deleting_the_account(client, migrated_database):
    body = await signup(client)
    token, user_id = body["access_token"], body["user"]["id"]
    other = await signin(client)
    for n in range(3):
        await make_task(client, token, title=f"task {n}")
    bob = (await signup(client, email="bob@example.com"))["access_token"]
    await make_task(client, bob, title="bob's")

    wrong = await client.request("DELETE", ME, json={"password": "not it"}, headers=bearer(token))
    assert (await problem(wrong, 403))["type"].endswith("/wrong-password")
    await problem(await client.request("DELETE", ME, headers=bearer(token)), 400)
    assert await status(client, token) == 200

    resp = await client.request("DELETE", ME, json={"password": PASSWORD}, headers=bearer(token))
    assert resp.status == 204
    assert rows(migrated_database, "SELECT count(*) FROM users WHERE id = %s", user_id) == 0
    for table in ("tasks", "task_totals", "sessions"):
        sql = f"SELECT count(*) FROM {table} WHERE user_id = %s"
        assert rows(migrated_database, sql, user_id) == 0, table
    for t in (token, other):
        await problem(await client.get(TASKS, headers=bearer(t)), 401)
    # Bob and his task are untouched.
    assert len(await (await client.get(TASKS, headers=bearer(bob))).json()) == 1
    # The email is free again.
    again = await signup(client, password=SHORT_PASSWORD)
    assert again["user"]["id"] != user_id


@pytest.mark.parametrize("body", [{}, {"password": 1}, {"password": ""}, {"pw": PASSWORD}])
async def test_deleting_with_a_bad_body_is_422_and_deletes_nothing(client, body):
    token = (await signup(client))["access_token"]
    await problem(await client.request("DELETE", ME, json=body, headers=bearer(token)), 422)
    assert await status(client, token) == 200


# --- one mailbox, one account --------------------------------------------------------

COMPOSED = "jos\u00e9@example.com"
DECOMPOSED = "jose\u0301@example.com"
FULLWIDTH = "\uff2a\uff2f\uff33\u00c9@example.com"  # ＪＯＳÉ


@pytest.mark.parametrize("other", [DECOMPOSED, FULLWIDTH, "JOS\u00c9@EXAMPLE.COM"])
async def test_one_address_in_another_unicode_form_is_taken(client, other):
    await signup(client, email=COMPOSED)
    resp = await client.post(
        "/api/auth/signup", json={"email": other, "password": SHORT_PASSWORD, "name": "B"}
    )
    assert (await problem(resp, 409))["type"].endswith("/email-taken")


@pytest.mark.parametrize("form", [COMPOSED, DECOMPOSED, FULLWIDTH])
async def test_sign_in_with_any_form_of_the_address(client, form):
    body = await signup(client, email=DECOMPOSED)
    assert body["user"]["email"] == DECOMPOSED  # stored as typed
    resp = await client.post(SIGNIN, json={"email": form, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["user"]["id"] == body["user"]["id"]


async def test_the_database_refuses_a_second_form_of_an_address(migrated_database):
    """The rule is the database's, not only the service's."""
    insert = "INSERT INTO users (email, password_hash, name) VALUES (%s, %s, 'x')"
    bcrypt_hash = "$2b$04$" + "a" * 53
    with psycopg.connect(migrated_database) as conn:
        conn.execute(insert, (COMPOSED, bcrypt_hash))
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            conn.execute(insert, (FULLWIDTH, bcrypt_hash))
    assert info.value.diag.constraint_name == "users_password_email_key"
