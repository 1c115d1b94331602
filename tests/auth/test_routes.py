from __future__ import annotations

import logging
import time
import uuid
import warnings

import jwt
import jwt.warnings
import psycopg
import pytest

from tests.conftest import TEST_SECRET
from tests.helpers import PROBLEM, SHORT_PASSWORD, bearer, problem, signup, user_token

SIGNUP = "/api/auth/signup"
SIGNIN = "/api/auth/signin"
ME = "/api/auth/me"


# --- sign-up --------------------------------------------------------------


async def test_signup_answers_a_session(client):
    resp = await client.post(
        SIGNUP, json={"email": "Ann@Example.com", "password": "correct horse", "name": "Ann"}
    )
    assert resp.status == 201
    assert resp.headers["Location"] == str(client.make_url(ME))
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert set(body) == {"user", "access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 604800
    user = body["user"]
    assert set(user) == {"id", "email", "name", "created_at"}
    assert user["email"] == "Ann@Example.com"  # stored and returned as given
    assert user["name"] == "Ann"
    uuid.UUID(user["id"])
    assert user["created_at"].endswith("Z")


async def test_signup_token_carries_the_contract_claims(client):
    body = await signup(client)
    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"], issuer="todo-api")
    assert claims["sub"] == body["user"]["id"]
    assert claims["exp"] - claims["iat"] == 604800
    assert uuid.UUID(claims["jti"])  # its session
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


async def test_signup_stores_a_bcrypt_hash_never_the_password(client, migrated_database):
    await signup(client, password="correct horse battery")
    with psycopg.connect(migrated_database) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$2b$04$")
    assert "correct horse" not in stored


@pytest.mark.parametrize("other", ["ann@example.com", "ANN@EXAMPLE.COM", "aNn@eXample.com"])
async def test_signup_with_a_taken_email_in_any_case_is_409(client, other):
    await signup(client, email="Ann@Example.com")
    resp = await client.post(SIGNUP, json={"email": other, "password": SHORT_PASSWORD, "name": "B"})
    body = await problem(resp, 409)
    assert "already exists" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": SHORT_PASSWORD, "name": "A"}, "email"),
        ({"email": "a@example.com", "name": "A"}, "password"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD}, "name"),
        ({"email": "not-an-email", "password": SHORT_PASSWORD, "name": "A"}, "email"),
        ({"email": "a@b", "password": SHORT_PASSWORD, "name": "A"}, "email"),
        ({"email": "a b@example.com", "password": SHORT_PASSWORD, "name": "A"}, "email"),
        (
            {"email": "a" * 64 + "@" + "b" * 186 + ".com", "password": SHORT_PASSWORD, "name": "A"},
            "email",
        ),
        ({"email": "a@example.com", "password": "x" * 7, "name": "A"}, "password"),
        ({"email": "a@example.com", "password": "x" * 257, "name": "A"}, "password"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": ""}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": " \t "}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "n" * 101}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "A\x00B"}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "Ann\x1b[31m"}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "Ann\nBob"}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "\u200b"}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "\u3164\u3164"}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": "\u2066\u2069"}, "name"),
        ({"email": 42, "password": SHORT_PASSWORD, "name": "A"}, "email"),
        ({"email": "a@example.com", "password": 12345678, "name": "A"}, "password"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": None}, "name"),
        ({"email": "a@example.com", "password": SHORT_PASSWORD, "name": ["A"]}, "name"),
        (
            {"email": "a@example.com", "password": SHORT_PASSWORD, "name": "A", "admin": True},
            "admin",
        ),
    ],
)
async def test_signup_refuses_invalid_input_with_422(client, payload, field):
    resp = await client.post(SIGNUP, json=payload)
    body = await problem(resp, 422)
    assert field in body["errors"], body
    assert isinstance(body["errors"][field], list)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "common password"),
        ("12345678", "common password"),
        ("aaaaaaaa", "Repeats"),
        (" " * 8, "Repeats"),
        ("ann.lee@example.com", "email address or name"),
        ("ANN.LEE@example.com", "email address or name"),
        ("Ann Lee-Smith", "email address or name"),
        ("ann.lee1", "easy to guess"),  # the local part and a digit
    ],
)
async def test_signup_refuses_a_guessable_password_and_says_why(client, password, why):
    resp = await client.post(
        SIGNUP, json={"email": "ann.lee@example.com", "password": password, "name": "Ann Lee-Smith"}
    )
    body = await problem(resp, 422)
    assert list(body["errors"]) == ["password"], body
    (message,) = body["errors"]["password"]
    assert why in message, message


@pytest.mark.parametrize("length", [64, 72, 256])
async def test_signup_accepts_long_passwords_and_signs_in_with_every_character(client, length):
    password = ("Zoë fjords at dusk, " * 13)[:length]
    await signup(client, password=password)
    ok = await client.post(SIGNIN, json={"email": "ann@example.com", "password": password})
    assert ok.status == 200
    cut = await client.post(SIGNIN, json={"email": "ann@example.com", "password": password[:-1]})
    await problem(cut, 401)


@pytest.mark.parametrize("raw", ["[]", '"x"', "1", "null", "true"])
async def test_signup_refuses_a_body_that_is_not_an_object(client, raw):
    resp = await client.post(SIGNUP, data=raw, headers={"Content-Type": "application/json"})
    await problem(resp, 422)


async def test_signup_accepts_the_limits(client):
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254
    await signup(client, email=email, password=("plum tree " * 26)[:256], name="n" * 100)
    await signup(client, email="x@example.com", password=SHORT_PASSWORD, name="Zoë 🌱")


async def test_signup_ignores_read_only_fields(client):
    payload = {
        "email": "a@example.com",
        "password": SHORT_PASSWORD,
        "name": "A",
        "id": str(uuid.uuid4()),
        "created_at": "2000-01-01T00:00:00Z",
    }
    resp = await client.post(SIGNUP, json=payload)
    assert resp.status == 201
    user = (await resp.json())["user"]
    assert user["id"] != payload["id"]
    assert not user["created_at"].startswith("2000")


async def test_signup_body_rules(client):
    await problem(
        await client.post(SIGNUP, data="{", headers={"Content-Type": "application/json"}), 400
    )
    await problem(
        await client.post(SIGNUP, data="email=a", headers={"Content-Type": "text/plain"}), 415
    )
    await problem(
        await client.post(SIGNUP, data=b"x" * 70000, headers={"Content-Type": "application/json"}),
        413,
    )


async def test_signup_with_a_trimmed_email_trims_it(client):
    body = await signup(client, email="  ann@example.com ")
    assert body["user"]["email"] == "ann@example.com"


# --- sign-in --------------------------------------------------------------


async def test_signin_answers_a_session(client):
    created = await signup(client, email="Ann@Example.com", password="correct horse")
    resp = await client.post(SIGNIN, json={"email": "ann@EXAMPLE.com", "password": "correct horse"})
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["user"] == created["user"]
    assert body["token_type"] == "bearer"
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert (await me.json())["id"] == created["user"]["id"]


async def test_unknown_email_and_wrong_password_look_the_same(client):
    await signup(client, email="ann@example.com", password="correct horse")
    wrong = await client.post(SIGNIN, json={"email": "ann@example.com", "password": "wrong horse"})
    unknown = await client.post(
        SIGNIN, json={"email": "bob@example.com", "password": "wrong horse"}
    )
    wrong_body, unknown_body = await problem(wrong, 401), await problem(unknown, 401)
    assert wrong_body == unknown_body
    assert wrong.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]


async def test_passwords_differing_after_byte_72_do_not_both_sign_in(client):
    prefix = "Zoë fjords " * 6  # 72 bytes of UTF-8
    await signup(client, password=prefix + "one")
    ok = await client.post(SIGNIN, json={"email": "ann@example.com", "password": prefix + "one"})
    assert ok.status == 200
    other = await client.post(SIGNIN, json={"email": "ann@example.com", "password": prefix + "two"})
    await problem(other, 401)
    shorter = await client.post(SIGNIN, json={"email": "ann@example.com", "password": prefix})
    await problem(shorter, 401)


async def test_a_300_character_password_at_signin_is_a_clean_401(client):
    await signup(client)
    resp = await client.post(SIGNIN, json={"email": "ann@example.com", "password": "p" * 300})
    await problem(resp, 401)


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "ann@example.com"},
        {"password": "x"},
        {"email": "ann@example.com", "password": ""},
        {"email": "ann@example.com", "password": 123},
        {"email": "ann@example.com", "password": "p" * 5000},
        {"email": "ann@example.com", "password": "x", "remember": True},
    ],
)
async def test_signin_refuses_invalid_input_with_422(client, payload):
    await problem(await client.post(SIGNIN, json=payload), 422)


# --- the bearer token ------------------------------------------------------


async def test_me_answers_the_user(client):
    body = await signup(client)
    resp = await client.get(ME, headers=bearer(body["access_token"]))
    assert resp.status == 200
    assert await resp.json() == body["user"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_scheme_name_is_case_insensitive(client, scheme):
    body = await signup(client)
    resp = await client.get(ME, headers={"Authorization": f"{scheme} {body['access_token']}"})
    assert resp.status == 200


def forge(claims: dict, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():
        # HS512 wants a 64-byte key; the forgery is the point here.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm=algorithm)


def claims_for(user_id: str, jti: str | None = None, **override) -> dict:
    """Good claims for user_id; jti: a live session of it (a random one if
    not given)."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "iat": now,
        "exp": now + 3600,
        "iss": "todo-api",
        "jti": jti or str(uuid.uuid4()),
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def none_alg_token(claims: dict) -> str:
    import base64
    import json

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS = {
    "expired": lambda uid, sid: forge(
        claims_for(uid, sid, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    ),
    "wrong key": lambda uid, sid: forge(
        claims_for(uid, sid), key="another-secret-that-is-long-enough-xx"
    ),
    "alg none": lambda uid, sid: none_alg_token(claims_for(uid, sid)),
    "HS512": lambda uid, sid: forge(claims_for(uid, sid), algorithm="HS512"),
    "HS384": lambda uid, sid: forge(claims_for(uid, sid), algorithm="HS384"),
    "no exp": lambda uid, sid: forge(claims_for(uid, sid, exp=None)),
    "no iat": lambda uid, sid: forge(claims_for(uid, sid, iat=None)),
    "no iss": lambda uid, sid: forge(claims_for(uid, sid, iss=None)),
    "no sub": lambda uid, sid: forge({k: v for k, v in claims_for(uid, sid).items() if k != "sub"}),
    "no jti": lambda uid, sid: forge({k: v for k, v in claims_for(uid, sid).items() if k != "jti"}),
    "jti not a uuid": lambda uid, sid: forge(claims_for(uid, "session-1")),
    "jti of no session": lambda uid, sid: forge(claims_for(uid, str(uuid.uuid4()))),
    "other iss": lambda uid, sid: forge(claims_for(uid, sid, iss="someone-else")),
    "sub not a uuid": lambda uid, sid: forge(claims_for("admin", sid)),
    "sub a number": lambda uid, sid: forge(claims_for(uid, sid, sub=12345)),
    "garbage": lambda uid, sid: "not.a.jwt",
    "tampered": lambda uid, sid: forge(claims_for(uid, sid))[:-2] + "xx",
}


def session_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["jti"]


async def test_a_token_forged_with_the_key_and_a_live_session_works(client):
    """The control for the bad tokens below: each differs from this one in
    one way only."""
    body = await signup(client)
    token = forge(claims_for(body["user"]["id"], session_of(body["access_token"])))
    resp = await client.get(ME, headers=bearer(token))
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_a_bad_token_is_401_with_www_authenticate(client, kind):
    body = await signup(client)
    token = BAD_TOKENS[kind](body["user"]["id"], session_of(body["access_token"]))
    resp = await client.get(ME, headers=bearer(token))
    await problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_session_of_another_account_is_401(client):
    ann = await signup(client)
    bob = await signup(client, email="bob@example.com")
    token = forge(claims_for(ann["user"]["id"], session_of(bob["access_token"])))
    await problem(await client.get(ME, headers=bearer(token)), 401)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer a b",
        "Bearer " + "a" * 5000,
    ],
)
async def test_a_missing_or_malformed_header_is_401(client, header):
    headers = {} if header is None else {"Authorization": header}
    resp = await client.get(ME, headers=headers)
    await problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_valid_token_for_a_missing_user_is_401_and_creates_nothing(
    client, migrated_database
):
    token = forge(claims_for(str(uuid.uuid4())))
    resp = await client.get(ME, headers=bearer(token))
    await problem(resp, 401)
    with psycopg.connect(migrated_database) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0


async def test_signup_and_signin_need_no_token(client):
    resp = await client.post(SIGNIN, json={"email": "a@example.com", "password": "x" * 8})
    assert resp.status == 401  # credentials, not a missing token
    assert (await resp.json(content_type=PROBLEM))["type"].endswith("invalid-credentials")


async def test_unknown_api_paths_and_methods_are_404_and_405_not_401(client):
    await problem(await client.get("/api/nothing-here"), 404)
    resp = await client.put(ME, json={})
    await problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


# --- secrets stay secret ----------------------------------------------------


async def test_passwords_tokens_and_hashes_never_reach_the_logs(client, caplog, migrated_database):
    with caplog.at_level(logging.DEBUG):
        body = await signup(client, password="hunter2-but-longer")
        await client.post(
            SIGNIN, json={"email": "ann@example.com", "password": "hunter2-but-longer"}
        )
        await client.post(SIGNIN, json={"email": "ann@example.com", "password": "wrong-password"})
        await client.get(ME, headers=bearer(body["access_token"]))
    with psycopg.connect(migrated_database) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    text = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    for secret in (
        "hunter2-but-longer",
        "wrong-password",
        body["access_token"],
        stored,
        TEST_SECRET,
    ):
        assert secret not in text


async def test_no_response_carries_the_hash(client):
    body = await signup(client)
    assert "password" not in str(body)
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert "password" not in await me.text()


async def test_a_name_is_one_visible_line_and_says_why_not(client):
    # Joiners and marks inside visible text are kept as sent.
    names = ("\U0001f469\u200d\U0001f4bb Ann", "Zoe\u0308", "\u05e9\u05e8\u05d4\u200f")
    for i, name in enumerate(names):
        resp = await client.post(
            SIGNUP,
            json={"email": f"{i}@example.com", "password": SHORT_PASSWORD, "name": name},
        )
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["user"]["name"] == name
    for name, why in (("Ann\tB", "control characters"), ("\u200b\u2060", "invisible")):
        resp = await client.post(
            SIGNUP, json={"email": "z@example.com", "password": SHORT_PASSWORD, "name": name}
        )
        assert why in " ".join((await problem(resp, 422))["errors"]["name"])


async def test_patch_me_renames_the_user(client):
    ann = await user_token(client)
    resp = await client.patch(ME, json={"name": "  Ann Lee \U0001f331"}, headers=bearer(ann.token))
    assert resp.status == 200, await resp.text()
    user = await resp.json()
    assert user["name"] == "  Ann Lee \U0001f331"  # kept as sent, like sign-up
    assert set(user) == {"id", "email", "name", "created_at"}
    again = await (await client.get(ME, headers=bearer(ann.token))).json()
    assert again == user
    # What the frontend got back may be sent back: read-only fields are ignored.
    resp = await client.patch(ME, json={**user, "name": "Ann"}, headers=bearer(ann.token))
    assert resp.status == 422  # ...but email is not a field this route changes
    assert "email" in (await problem(resp, 422))["errors"]
    resp = await client.patch(
        ME,
        json={"id": user["id"], "created_at": user["created_at"], "name": "Ann"},
        headers=bearer(ann.token),
    )
    assert (await resp.json())["name"] == "Ann"


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "\u200b"}, {"name": "A\nB"}, {"name": "n" * 101}, {"name": 5}],
)
async def test_patch_me_refuses_a_bad_name_and_changes_nothing(client, body):
    ann = await user_token(client)
    body_problem = await problem(await client.patch(ME, json=body, headers=bearer(ann.token)), 422)
    assert "name" in body_problem["errors"]
    assert (await (await client.get(ME, headers=bearer(ann.token))).json())["name"] == "Ann"


async def test_patch_me_needs_a_token_and_an_account(client, migrated_database):
    assert (await client.patch(ME, json={"name": "X"})).status == 401
    ann = await user_token(client)
    with psycopg.connect(migrated_database, autocommit=True) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (ann.id,))
    await problem(await client.patch(ME, json={"name": "X"}, headers=bearer(ann.token)), 401)
