"""The service with a real Better Auth server (tests/betterauth/server.mjs):
tokens from its own /api/auth/token, with the plugin's defaults and with
ES256, drive the service as the Next.js frontend would."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service import keys
from service.app import create_app
from tests.auth.conftest import running_better_auth
from tests.conftest import TEST_SECRET, make_settings
from tests.helpers import assert_session_ended, bearer, problem, signup
from tests.launcher import wait_until_async

TASKS = "/api/tasks"
ME = "/api/auth/me"
# The order of NIST P-256, ES256's curve.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def forged(token: str, header: dict, signature: bytes = b"") -> str:
    """The token's claims under another header and signature."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = token.split(".")[1]
    return f"{b64(json.dumps(header).encode())}.{payload}.{b64(signature)}"


def swapped_claims(token: str, claims: dict) -> str:
    """The token's header and signature around other claims."""
    header, _, signature = token.split(".")
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{payload}.{signature}"


async def test_the_plugin_defaults_are_what_the_service_must_accept(better_auth):
    user = await better_auth.sign_up(name="Ann")
    token = await better_auth.token(user)
    header = jwt.get_unverified_header(token)
    claims = claims_of(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    assert claims["sub"] == user.id
    assert len(user.id) == 32
    assert "-" not in user.id  # not the UUID form the service's own ids have
    assert claims["iss"] == claims["aud"] == better_auth.url
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert (claims["email"], claims["name"]) == (user.email, "Ann")


@pytest.mark.parametrize("server", ["better_auth", "better_auth_es256"])
async def test_a_better_auth_user_manages_tasks(aiohttp_client, migrated_database, request, server):
    ba = request.getfixturevalue(server)
    client = await aiohttp_client(
        create_app(make_settings(DATABASE_URL=migrated_database, BETTER_AUTH_URL=ba.url))
    )
    user = await ba.sign_up(name="Bea")
    token = await ba.token(user)
    expected_alg = "ES256" if server == "better_auth_es256" else "EdDSA"
    assert jwt.get_unverified_header(token)["alg"] == expected_alg

    resp = await client.get(ME, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    me = await resp.json()
    assert (me["email"], me["name"]) == (user.email, "Bea")
    uuid.UUID(me["id"])  # an account here, with its own id

    resp = await client.post(TASKS, json={"title": "from Better Auth"}, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    task = await resp.json()
    assert task["user_id"] == me["id"]

    resp = await client.get(TASKS, headers=bearer(token))
    assert [t["id"] for t in await resp.json()] == [task["id"]]
    resp = await client.get(f"{TASKS}/{task['id']}", headers=bearer(token))
    assert resp.status == 200
    assert (await resp.json())["title"] == "from Better Auth"

    # The frontend's own routes, by its session.user.id and by the id here.
    for user_id in (user.id, me["id"]):
        resp = await client.get(f"/api/{user_id}/tasks", headers=bearer(token))
        assert resp.status == 200, await resp.text()
        assert [t["id"] for t in await resp.json()] == [task["id"]]
        resp = await client.patch(
            f"/api/{user_id}/tasks/{task['id']}/complete", headers=bearer(token)
        )
        assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"/api/{user.id}/tasks", json={"title": "second"}, headers=bearer(token)
    )
    assert resp.status == 201


async def test_two_better_auth_users_never_see_each_other(ba_client, better_auth):
    ann, bob = await better_auth.sign_up(name="Ann"), await better_auth.sign_up(name="Bob")
    ann_token, bob_token = await better_auth.token(ann), await better_auth.token(bob)
    resp = await ba_client.post(TASKS, json={"title": "Ann's"}, headers=bearer(ann_token))
    task = await resp.json()
    ann_local = task["user_id"]

    resp = await ba_client.get(TASKS, headers=bearer(bob_token))
    assert await resp.json() == []
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        resp = await ba_client.request(
            method, f"{TASKS}/{task['id']}", json={"title": "x"}, headers=bearer(bob_token)
        )
        await problem(resp, 404)
    resp = await ba_client.patch(f"{TASKS}/{task['id']}/complete", headers=bearer(bob_token))
    await problem(resp, 404)
    for ann_id in (ann.id, ann_local):
        resp = await ba_client.get(f"/api/{ann_id}/tasks", headers=bearer(bob_token))
        await problem(resp, 403)
    resp = await ba_client.get(f"{TASKS}/{task['id']}", headers=bearer(ann_token))
    assert (await resp.json())["title"] == "Ann's"  # untouched


async def test_first_requests_at_once_make_one_account(ba_client, better_auth, migrated_database):
    user = await better_auth.sign_up()
    token = await better_auth.token(user)
    responses = await asyncio.gather(*(ba_client.get(ME, headers=bearer(token)) for _ in range(8)))
    ids = {(await r.json())["id"] for r in responses}
    assert [r.status for r in responses] == [200] * 8
    assert len(ids) == 1
    with psycopg.connect(migrated_database) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM users WHERE auth_subject = %s", (user.id,)
        ).fetchone()
    assert count == 1


async def test_an_email_of_a_password_account_makes_a_separate_account(ba_client, better_auth):
    email = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    local = await signup(ba_client, email=email)
    resp = await ba_client.post(
        TASKS, json={"title": "password account's"}, headers=bearer(local["access_token"])
    )
    assert resp.status == 201

    # Better Auth does not verify emails: the same address there proves nothing.
    user = await better_auth.sign_up(email=email)
    token = await better_auth.token(user)
    resp = await ba_client.get(ME, headers=bearer(token))
    me = await resp.json()
    assert me["email"] == email
    assert me["id"] != local["user"]["id"]
    resp = await ba_client.get(TASKS, headers=bearer(token))
    assert await resp.json() == []
    resp = await ba_client.get(f"/api/{local['user']['id']}/tasks", headers=bearer(token))
    await problem(resp, 403)

    # The password account is untouched and still signs in.
    resp = await ba_client.post(
        "/api/auth/signin", json={"email": email, "password": "correct horse"}
    )
    assert resp.status == 200
    assert (await resp.json())["user"]["id"] == local["user"]["id"]


async def test_forged_tokens_under_the_real_key_id_are_refused(ba_client, better_auth):
    user = await better_auth.sign_up()
    token = await better_auth.token(user)
    kid = jwt.get_unverified_header(token)["kid"]
    claims = claims_of(token)
    other_key = Ed25519PrivateKey.generate()
    forgeries = {
        "another Ed25519 key": jwt.encode(
            claims, other_key, algorithm="EdDSA", headers={"kid": kid}
        ),
        "HS256 with BETTER_AUTH_SECRET": jwt.encode(
            claims, TEST_SECRET, algorithm="HS256", headers={"kid": kid}
        ),
        "alg none": forged(token, {"alg": "none", "kid": kid}),
        "alg none, no signature part": forged(token, {"alg": "none", "kid": kid})[:-1],
        "the real signature, other claims": ".".join(
            [
                token.split(".")[0],
                jwt.utils.base64url_encode(
                    json.dumps({**claims, "sub": "x" * 32}).encode()
                ).decode(),
                token.split(".")[2],
            ]
        ),
    }
    for what, bad in forgeries.items():
        resp = await ba_client.get(TASKS, headers=bearer(bad))
        body = await problem(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), what
        assert "token" in body["detail"], what
    resp = await ba_client.get(TASKS, headers=bearer(token))
    assert resp.status == 200  # the genuine one still works


async def test_cached_keys_work_while_the_key_server_is_down(aiohttp_client, migrated_database):
    with running_better_auth() as ba:
        client = await aiohttp_client(
            create_app(make_settings(DATABASE_URL=migrated_database, BETTER_AUTH_URL=ba.url))
        )
        ann, bob = await ba.sign_up(name="Ann"), await ba.sign_up(name="Bob")
        ann_token, bob_token = await ba.token(ann), await ba.token(bob)
        resp = await client.get(TASKS, headers=bearer(ann_token))
        assert resp.status == 200  # the keys are fetched and held
        ba.stop()

    # Bob's token was never seen: only the held key can verify it.
    resp = await client.get(ME, headers=bearer(bob_token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["name"] == "Bob"
    resp = await client.get(TASKS, headers=bearer(ann_token))
    assert resp.status == 200

    kid = jwt.get_unverified_header(bob_token)["kid"]
    forgery = jwt.encode(
        claims_of(bob_token), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    resp = await client.get(TASKS, headers=bearer(forgery))
    await problem(resp, 401)

    # A key the service never held cannot be checked now: 503, not 401.
    unknown = jwt.encode(
        claims_of(bob_token),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": "not-" + kid},
    )
    client.app[keys.TOKENS].better_auth.refetch_interval = 0.0
    resp = await client.get(TASKS, headers=bearer(unknown))
    body = await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) > 0
    assert "keys" in body["detail"]


async def test_a_claimed_name_follows_the_sign_up_rule(ba_client, better_auth):
    # The account here is made from the token's name: one line that shows,
    # else the email's local part, as for a token without a name.
    names = {
        "\u3164\u3164": None,  # Hangul fillers only
        "Ann\nLee\x07": "Ann Lee",
        "\U0001f469\u200d\U0001f4bb Ann": "\U0001f469\u200d\U0001f4bb Ann",  # the joiner stays
    }
    for given, kept in names.items():
        user = await better_auth.sign_up(name=given)
        resp = await ba_client.get(ME, headers=bearer(await better_auth.token(user)))
        assert resp.status == 200, await resp.text()
        expected = kept if kept is not None else user.email.partition("@")[0]
        assert (await resp.json())["name"] == expected, given


async def test_the_password_belongs_to_better_auth(ba_client, better_auth):
    token = await better_auth.token(await better_auth.sign_up())
    change = {"current_password": "correct horse battery", "new_password": "tangerine orbit"}
    resp = await ba_client.put("/api/auth/password", json=change, headers=bearer(token))
    assert (await problem(resp, 403))["type"].endswith("/managed-by-better-auth")
    assert (await ba_client.get(ME, headers=bearer(token))).status == 200  # nothing ended


async def token_issued_after(better_auth, user, second: int) -> str:
    """A token Better Auth issues for `user` with an `iat` past `second`
    (its tokens carry no `jti`: two of one second are the same token)."""
    later = {}

    async def issued_after() -> bool:
        later["token"] = await better_auth.token(user)
        return claims_of(later["token"])["iat"] > second

    await wait_until_async(issued_after, f"no token issued after {second}", 5)
    return later["token"]


async def another_worker(aiohttp_client, migrated_database, better_auth):
    """Another instance of the service on the same database, that has seen
    no token yet."""
    settings = make_settings(DATABASE_URL=migrated_database, BETTER_AUTH_URL=better_auth.url)
    return await aiohttp_client(create_app(settings))


async def test_signing_out_a_better_auth_token_ends_that_token_only(
    ba_client, better_auth, aiohttp_client, migrated_database
):
    user = await better_auth.sign_up()
    token = await better_auth.token(user)
    other = await token_issued_after(better_auth, user, claims_of(token)["iat"])
    for t in (token, other):  # both verified, cached and live
        assert (await ba_client.get(TASKS, headers=bearer(t))).status == 200

    resp = await ba_client.post("/api/auth/signout", headers=bearer(token))
    assert resp.status == 204, await resp.text()
    fresh = await another_worker(aiohttp_client, migrated_database, better_auth)
    for service in (ba_client, fresh):
        for path in (TASKS, ME):
            await assert_session_ended(service, token, path)
        assert (await service.get(TASKS, headers=bearer(other))).status == 200
    assert (await ba_client.get(TASKS, headers=bearer(other))).status == 200
    # The same person's later tokens work too.
    later = await token_issued_after(better_auth, user, claims_of(other)["iat"])
    assert (await ba_client.get(ME, headers=bearer(later))).status == 200


async def test_a_signed_out_token_stays_ended_under_its_other_ecdsa_signature(
    aiohttp_client, migrated_database, better_auth_es256
):
    """An ECDSA signature (r, s) has a twin, (r, n - s), that verifies as
    well: anyone holding the token can make it. It is the same token."""
    client = await aiohttp_client(
        create_app(
            make_settings(DATABASE_URL=migrated_database, BETTER_AUTH_URL=better_auth_es256.url)
        )
    )
    token = await better_auth_es256.token(await better_auth_es256.sign_up())
    signed, _, signature = token.rpartition(".")
    raw = jwt.utils.base64url_decode(signature)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    twin_s = (P256_ORDER - s).to_bytes(32, "big")
    twin = signed + "." + jwt.utils.base64url_encode(r + twin_s).decode()
    assert twin != token
    assert (await client.get(TASKS, headers=bearer(twin))).status == 200  # it verifies

    resp = await client.post("/api/auth/signout", headers=bearer(token))
    assert resp.status == 204
    for t in (token, twin):
        await assert_session_ended(client, t)


async def test_signing_out_everywhere_ends_every_better_auth_token_issued_until_then(
    ba_client, better_auth, migrated_database, aiohttp_client
):
    user = await better_auth.sign_up()
    first = await better_auth.token(user)
    second = await token_issued_after(better_auth, user, claims_of(first)["iat"])
    stranger = await better_auth.token(await better_auth.sign_up())
    for t in (first, second, stranger):
        assert (await ba_client.get(TASKS, headers=bearer(t))).status == 200

    resp = await ba_client.post(
        "/api/auth/signout", json={"everywhere": True}, headers=bearer(second)
    )
    assert resp.status == 204, await resp.text()
    fresh = await another_worker(aiohttp_client, migrated_database, better_auth)
    for service in (ba_client, fresh):
        for t in (first, second):
            await assert_session_ended(service, t)
        assert (await service.get(TASKS, headers=bearer(stranger))).status == 200

    with psycopg.connect(migrated_database) as conn:
        (signed_out,) = conn.execute(
            "SELECT extract(epoch FROM better_auth_signed_out_at) FROM users "
            "WHERE auth_subject = %s",
            (user.id,),
        ).fetchone()
    # Still signed in at Better Auth: a token issued after that second works,
    # with the same account and its tasks.
    later = await token_issued_after(better_auth, user, int(signed_out))
    resp = await ba_client.get(ME, headers=bearer(later))
    assert resp.status == 200, await resp.text()
    resp = await ba_client.post("/api/auth/signout", headers=bearer(later))
    assert resp.status == 204


async def test_deleting_a_better_auth_account_needs_no_password_and_leaves_better_auth(
    ba_client, better_auth, migrated_database
):
    user = await better_auth.sign_up()
    token = await better_auth.token(user)
    resp = await ba_client.post(TASKS, json={"title": "mine"}, headers=bearer(token))
    local_id = (await resp.json())["user_id"]

    resp = await ba_client.delete(ME, headers=bearer(token))
    assert resp.status == 204, await resp.text()
    with psycopg.connect(migrated_database) as conn:
        for sql in (
            "SELECT count(*) FROM users WHERE id = %s",
            "SELECT count(*) FROM tasks WHERE user_id = %s",
        ):
            assert conn.execute(sql, (local_id,)).fetchone()[0] == 0
        (departed,) = conn.execute(
            "SELECT extract(epoch FROM departed_at) FROM better_auth_departures "
            "WHERE auth_subject = %s",
            (user.id,),
        ).fetchone()
    # The token issued before the deletion makes no new account.
    await problem(await ba_client.get(TASKS, headers=bearer(token)), 401)
    await problem(await ba_client.get(ME, headers=bearer(token)), 401)

    # Still signed in at Better Auth: a token it issues after the deletion's
    # second is a new, empty account.
    later = {}

    async def issued_after_the_deletion() -> bool:
        later["token"] = await better_auth.token(user)
        return claims_of(later["token"])["iat"] > int(departed)

    await wait_until_async(issued_after_the_deletion, "no token issued after the deletion", 5)
    resp = await ba_client.get(TASKS, headers=bearer(later["token"]))
    assert resp.status == 200
    assert await resp.json() == []
    me = await (await ba_client.get(ME, headers=bearer(later["token"]))).json()
    assert me["id"] != local_id
