"""Better Auth token edge cases, with keys made here and published by a key
server whose behaviour each test sets: every algorithm the plugin offers,
bad claims, rotation, withdrawn keys, and a key server that is slow, down
or answers junk."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from service import keys
from service.app import create_app
from service.auth.betterauth import REFETCH_INTERVAL
from tests.conftest import TEST_SECRET, make_settings
from tests.helpers import bearer, problem, user_token
from tests.launcher import wait_until_async

TASKS = "/api/tasks"


def private_key(alg: str) -> Any:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES512":
        return ec.generate_private_key(ec.SECP521R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        return {
            **algorithm.to_jwk(self.private.public_key(), as_dict=True),
            "kid": self.kid,
            "alg": self.alg,
        }


@dataclass
class KeyServer:
    """Publishes `keys` at /api/auth/jwks the way `mode` says."""

    keys: list[SigningKey] = field(default_factory=list)
    mode: str = "ok"
    fetches: int = 0
    extra: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    fetched: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""

    async def wait_for_fetches(self, count: int) -> None:
        async with asyncio.timeout(10), self.fetched:
            await self.fetched.wait_for(lambda: self.fetches >= count)

    async def jwks(self, request: web.Request) -> web.StreamResponse:
        self.fetches += 1
        async with self.fetched:
            self.fetched.notify_all()
        if self.mode == "slow":
            await self.release.wait()
        if self.mode == "error":
            return web.Response(status=500, text="Internal Server Error")
        if self.mode == "html":
            return web.Response(text="<html>Sign in</html>", content_type="text/html")
        if self.mode == "not a key set":
            return web.json_response({"keys": "none"})
        if self.mode == "huge":
            return web.json_response({"keys": [], "padding": "x" * 400_000})
        if self.mode in ("in pieces", "too large, slowly"):
            return await self.in_pieces(request)
        return web.json_response(self.key_set())

    def key_set(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys] + self.extra}

    async def in_pieces(self, request: web.Request) -> web.StreamResponse:
        """The answer in separate writes (chunked), the event loop going
        round between them so the service receives each on its own."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if self.mode == "in pieces":
            body = orjson.dumps(self.key_set())
            pieces = [body[i : i + 97] for i in range(0, len(body), 97)]
        else:  # past the cap, and then never ending
            pieces = [b'{"keys": [], "padding": "'] + [b"x" * 65536] * 5
        for piece in pieces:
            await resp.write(piece)
            for _ in range(20):
                await asyncio.sleep(0)
        if self.mode == "too large, slowly":
            await self.release.wait()
        await resp.write_eof()
        return resp

    def add(self, alg: str = "EdDSA") -> SigningKey:
        key = SigningKey(uuid.uuid4().hex, alg, private_key(alg))
        self.keys.append(key)
        return key

    def token(self, key: SigningKey, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "sub": "ba-user-" + uuid.uuid4().hex[:24],
            "iss": self.url,
            "aud": self.url,
            "iat": now,
            "exp": now + 900,
            "email": "kim@example.com",
            "name": "Kim",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})


@pytest.fixture
async def key_server(aiohttp_server) -> KeyServer:
    server = KeyServer()
    app = web.Application()
    app.router.add_get("/api/auth/jwks", server.jwks)
    running = await aiohttp_server(app)
    server.url = str(running.make_url("")).rstrip("/")
    yield server
    server.release.set()


@pytest.fixture
def start_service(aiohttp_client, migrated_database, key_server):
    """Start the service against the key server. Tests publish their keys
    first: the service fetches the set as it starts."""

    async def start():
        settings = make_settings(DATABASE_URL=migrated_database, BETTER_AUTH_URL=key_server.url)
        return await aiohttp_client(create_app(settings))

    return start


def verifier(client):
    return client.app[keys.TOKENS].better_auth


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "ES512", "RS256", "PS256"])
async def test_every_algorithm_the_plugin_offers_is_accepted(key_server, start_service, alg):
    token = key_server.token(key_server.add(alg))
    service = await start_service()
    resp = await service.get("/api/auth/me", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["name"] == "Kim"


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 960}, "expired"),
        ({"iss": "https://evil.example.com"}, "not valid"),
        ({"aud": "https://other-app.example.com"}, "not valid"),
        ({"aud": ["https://other-app.example.com"]}, "not valid"),
        ({"sub": None}, "not valid"),
        ({"iat": None}, "not valid"),
        ({"exp": None}, "not valid"),
        ({"iss": None}, "not valid"),
        ({"aud": None}, "not valid"),
        ({"sub": 12345}, "not valid"),
        ({"sub": ""}, "not valid"),
        ({"sub": "x" * 256}, "not valid"),
        ({"nbf": int(time.time()) + 3600}, "not valid"),
        ({"iat": int(time.time()) + 3600}, "not valid"),
    ],
)
async def test_bad_claims_are_401(key_server, start_service, claims, detail):
    token = key_server.token(key_server.add(), **claims)
    service = await start_service()
    resp = await service.get(TASKS, headers=bearer(token))
    body = await problem(resp, 401)
    assert detail in body["detail"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_issuer_may_carry_a_trailing_slash(key_server, start_service):
    key = key_server.add()
    service = await start_service()
    bare = key_server.token(key, sub="same-person")
    slashed = key_server.token(
        key, sub="same-person", iss=key_server.url + "/", aud=[key_server.url + "/"]
    )
    ids = set()
    for token in (bare, slashed):
        resp = await service.get("/api/auth/me", headers=bearer(token))
        assert resp.status == 200, await resp.text()
        ids.add((await resp.json())["id"])
    assert len(ids) == 1  # one person, one account


async def test_the_algorithm_is_the_keys_not_the_tokens(key_server, start_service):
    rs256 = key_server.add("RS256")
    service = await start_service()
    # Signed with the right RSA key, but as PS256: the key says RS256.
    ps256 = jwt.encode(
        {"sub": "s", "iss": key_server.url, "aud": key_server.url, "iat": 1, "exp": 2**40},
        rs256.private,
        algorithm="PS256",
        headers={"kid": rs256.kid},
    )
    await problem(await service.get(TASKS, headers=bearer(ps256)), 401)
    assert (await service.get(TASKS, headers=bearer(key_server.token(rs256)))).status == 200


async def test_a_symmetric_key_in_the_set_is_never_used(key_server, start_service):
    secret = b"published-hmac-secret-0123456789"
    key_server.extra.append(
        {**jwt.get_algorithm_by_name("HS256").to_jwk(secret, as_dict=True), "kid": "hmac"}
    )
    key_server.add()  # one usable key, so the set itself is fine
    service = await start_service()
    hs256 = jwt.encode(
        {"sub": "s", "iss": key_server.url, "aud": key_server.url, "iat": 1, "exp": 2**40},
        secret,
        algorithm="HS256",
        headers={"kid": "hmac"},
    )
    await problem(await service.get(TASKS, headers=bearer(hs256)), 401)


async def test_a_rotated_key_is_fetched_when_it_first_appears(key_server, start_service):
    old = key_server.add()
    service = await start_service()
    assert (await service.get(TASKS, headers=bearer(key_server.token(old)))).status == 200
    fetches = key_server.fetches
    verifier(service).refetch_interval = 0.0  # no wait between fetches here

    new = key_server.add()  # Better Auth rotated its key
    resp = await service.get(TASKS, headers=bearer(key_server.token(new)))
    assert resp.status == 200, await resp.text()
    assert key_server.fetches == fetches + 1
    assert (await service.get(TASKS, headers=bearer(key_server.token(old)))).status == 200


def forged_tokens(key_server: KeyServer, count: int) -> list[str]:
    """Tokens under key ids nobody publishes."""
    stranger = SigningKey("unknown", "EdDSA", private_key("EdDSA"))
    tokens = []
    for i in range(count):
        stranger.kid = f"forged-{uuid.uuid4().hex[:8]}-{i}"
        tokens.append(key_server.token(stranger))
    return tokens


async def test_unknown_key_ids_refetch_at_most_once_per_interval(key_server, start_service):
    key = key_server.add()
    service = await start_service()
    assert (await service.get(TASKS, headers=bearer(key_server.token(key)))).status == 200
    fetches = key_server.fetches
    tokens = forged_tokens(key_server, 20)
    responses = await asyncio.gather(*(service.get(TASKS, headers=bearer(t)) for t in tokens))
    for resp in responses:
        body = await problem(resp, 401)
        assert "does not publish" in body["detail"]
    # The set was fetched at startup; the 20 waited for the next fetch, when
    # that fetch's window ended, together (or, on a machine slow enough for
    # the window to pass while they came, for one more).
    assert fetches + 1 <= key_server.fetches <= fetches + 2


async def test_callers_waiting_for_the_keys_share_one_fetch(key_server, start_service):
    key = key_server.add()
    key_server.mode = "slow"  # the startup fetch waits until released
    service = await start_service()
    verifier(service).refetch_interval = 600.0  # however slow the machine: no second fetch
    tokens = [key_server.token(key) for _ in range(10)]  # ten people, none verified yet
    pending = [asyncio.ensure_future(service.get(TASKS, headers=bearer(t))) for t in tokens]
    await key_server.wait_for_fetches(1)
    key_server.release.set()
    responses = await asyncio.gather(*pending)
    assert [r.status for r in responses] == [200] * 10
    assert key_server.fetches == 1


async def test_a_key_published_just_after_a_fetch_is_waited_for_not_refused(
    key_server, start_service
):
    old = key_server.add()
    service = await start_service()
    assert (await service.get(TASKS, headers=bearer(key_server.token(old)))).status == 200
    v = verifier(service)
    fetches = key_server.fetches
    # An unknown key id makes the service fetch at once...
    v.refetch_interval = 0.0
    [forged] = forged_tokens(key_server, 1)
    await problem(await service.get(TASKS, headers=bearer(forged)), 401)
    assert key_server.fetches == fetches + 1
    # ... and Better Auth rotates its key a moment later, inside the window
    # that fetch opened: the new key's token waits for the next fetch.
    v.refetch_interval = REFETCH_INTERVAL
    new = key_server.add()
    resp = await service.get(TASKS, headers=bearer(key_server.token(new)))
    assert resp.status == 200, await resp.text()
    assert key_server.fetches == fetches + 2


async def test_past_the_bound_unknown_key_ids_get_503_at_once(key_server, start_service):
    key = key_server.add()
    service = await start_service()
    assert (await service.get(TASKS, headers=bearer(key_server.token(key)))).status == 200
    v = verifier(service)
    v.refetch_interval = 600.0  # the next fetch is far: waiters stay waiting
    v.max_waiting = 5
    tokens = forged_tokens(key_server, 8)
    waiting = [asyncio.ensure_future(service.get(TASKS, headers=bearer(t))) for t in tokens[:5]]

    async def all_waiting() -> bool:
        return v.waiting == 5

    await wait_until_async(all_waiting, "the forged tokens never waited")
    for token in tokens[5:]:
        resp = await service.get(TASKS, headers=bearer(token))
        body = await problem(resp, 503)
        assert body["type"].endswith("/auth-keys-unavailable")
        assert int(resp.headers["Retry-After"]) > 0
    assert not any(w.done() for w in waiting)
    # A held key holds no place: its tokens go on working.
    assert (await service.get(TASKS, headers=bearer(key_server.token(key)))).status == 200
    assert v.waiting == 5

    for w in waiting:  # their callers give up: the places are given back
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)

    async def none_waiting() -> bool:
        return v.waiting == 0

    await wait_until_async(none_waiting, "the places were never given back")


async def test_a_withdrawn_key_stops_working(key_server, start_service):
    kept, withdrawn = key_server.add(), key_server.add()
    service = await start_service()
    assert (await service.get(TASKS, headers=bearer(key_server.token(withdrawn)))).status == 200
    key_server.keys.remove(withdrawn)
    v = verifier(service)
    v.refetch_interval = 0.0
    v.max_key_age = 0.0
    # The first use of a stale set refreshes it in the background.
    fetches = key_server.fetches
    assert (await service.get(TASKS, headers=bearer(key_server.token(kept)))).status == 200
    await v.wait_for_refresh()
    assert key_server.fetches == fetches + 1
    resp = await service.get(TASKS, headers=bearer(key_server.token(withdrawn)))
    await problem(resp, 401)
    assert (await service.get(TASKS, headers=bearer(key_server.token(kept)))).status == 200


async def test_a_withdrawn_key_stops_working_for_tokens_already_verified(key_server, start_service):
    kept, withdrawn = key_server.add(), key_server.add()
    service = await start_service()
    cached = {key.kid: key_server.token(key) for key in (kept, withdrawn)}
    for token in cached.values():  # verified and cached
        assert (await service.get(TASKS, headers=bearer(token))).status == 200
    # Better Auth withdraws a key and rotates in a new one; the new key's
    # first token makes the service fetch the set.
    key_server.keys.remove(withdrawn)
    new = key_server.add()
    verifier(service).refetch_interval = 0.0
    assert (await service.get(TASKS, headers=bearer(key_server.token(new)))).status == 200
    # At once, not once the cached check lapses.
    for _ in range(3):
        resp = await service.get(TASKS, headers=bearer(cached[withdrawn.kid]))
        body = await problem(resp, 401)
        assert "no longer publishes" in body["detail"]
        assert (await service.get(TASKS, headers=bearer(cached[kept.kid]))).status == 200


@pytest.mark.parametrize("mode", ["error", "html", "not a key set", "huge"])
async def test_a_key_server_answering_junk_is_503_for_unheld_keys(key_server, start_service, mode):
    key_server.mode = mode
    token = key_server.token(key_server.add())
    service = await start_service()
    resp = await service.get(TASKS, headers=bearer(token))
    body = await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) > 0
    assert body["type"].endswith("/auth-keys-unavailable")
    # The service's own tokens do not depend on it.
    _, own = await user_token(service)
    assert (await service.get(TASKS, headers=bearer(own))).status == 200


async def test_a_key_set_sent_in_pieces_is_read_to_its_end(key_server, start_service):
    key_server.mode = "in pieces"
    key_server.add("RS256")  # a large key, so the set takes several pieces
    key = key_server.add()
    service = await start_service()
    resp = await service.get(TASKS, headers=bearer(key_server.token(key)))
    assert resp.status == 200, await resp.text()


async def test_a_key_set_past_the_cap_is_refused_as_it_arrives(key_server, start_service, caplog):
    key_server.mode = "too large, slowly"  # and then it never ends
    token = key_server.token(key_server.add())
    service = await start_service()
    resp = await service.get(TASKS, headers=bearer(token))
    await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) > 0
    # Refused for its size, while the key server still held the answer open.
    assert not key_server.release.is_set()
    assert any("larger than" in r.getMessage() for r in caplog.records)
    assert not any("Timeout" in r.getMessage() for r in caplog.records)


async def test_held_keys_outlive_a_key_server_that_breaks(key_server, start_service):
    key = key_server.add()
    service = await start_service()
    assert (await service.get(TASKS, headers=bearer(key_server.token(key)))).status == 200
    fetches = key_server.fetches
    key_server.mode = "html"
    v = verifier(service)
    v.refetch_interval = 0.0
    v.max_key_age = 0.0
    for _ in range(3):  # each use refreshes the stale set, and fails to
        assert (await service.get(TASKS, headers=bearer(key_server.token(key)))).status == 200
        await v.wait_for_refresh()
    assert key_server.fetches >= fetches + 3


async def test_a_slow_key_server_is_503_and_slows_nobody_else(key_server, start_service):
    key_server.mode = "slow"  # never answers; the service gives up after 3 s
    token = key_server.token(key_server.add())
    service = await start_service()
    _, own = await user_token(service)
    waiting = asyncio.ensure_future(service.get(TASKS, headers=bearer(token)))
    resp = await service.get(TASKS, headers=bearer(own))
    assert resp.status == 200
    assert not waiting.done()  # answered while the other still waits
    resp = await waiting
    await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) > 0


async def test_better_auth_tokens_are_refused_when_it_is_not_configured(
    aiohttp_client, migrated_database, key_server
):
    client = await aiohttp_client(create_app(make_settings(DATABASE_URL=migrated_database)))
    token = key_server.token(key_server.add())
    await problem(await client.get(TASKS, headers=bearer(token)), 401)
    assert key_server.fetches == 0


def signed_with_header(key: SigningKey, header: Any, claims: dict[str, Any]) -> str:
    """`claims` under a header of any shape, really signed with `key`, so
    nothing but the header is wrong."""
    algorithm = jwt.get_algorithm_by_name(key.alg)
    signing_key = algorithm.prepare_key(key.private)
    parts = [
        jwt.utils.base64url_encode(orjson.dumps(header)),
        jwt.utils.base64url_encode(orjson.dumps(claims)),
    ]
    signing_input = b".".join(parts)
    return b".".join(
        [signing_input, jwt.utils.base64url_encode(algorithm.sign(signing_input, signing_key))]
    ).decode()


def hostile_headers(kid: str | None, alg: str) -> list[Any]:
    """Headers of every wrong shape, around a real key id and algorithm."""
    real = {"alg": alg, "typ": "JWT"} | ({"kid": kid} if kid is not None else {})
    wrong_types = [[alg], {alg: alg}, 1, 1.5, True, None, [[]], {"": {}}]
    headers: list[Any] = [[real], "a string", 7, None, [], {}]
    for name in ("alg", "kid", "typ", "cty", "crit"):
        headers += [real | {name: value} for value in wrong_types]
    # No extension is understood: an unencoded payload, or any `crit`.
    headers += [real | {"b64": value} for value in (False, 1, "true", [True])]
    headers += [real | {"crit": ["exp"], "exp": 1}]
    # Strings that name no key or algorithm here.
    headers += [real | {name: value} for name in ("alg", "kid") for value in ("", "x" * 3000)]
    headers += [real | {"alg": value} for value in ("none", "HS256" if kid else "EdDSA")]
    return headers


@pytest.mark.parametrize("kind", ["better auth", "own", "own, Better Auth off"])
async def test_a_token_header_of_any_wrong_shape_is_401(
    key_server, start_service, aiohttp_client, migrated_database, kind
):
    """Every hostile header, signed for real with the key it names, is a 401
    problem: with Better Auth on (its key id, and none: our own token's
    shape), and with BETTER_AUTH_URL unset."""
    key = key_server.add()
    now = int(time.time())
    if kind == "better auth":
        service = await start_service()
        verifier(service).refetch_interval = 0.0  # unknown key ids: no wait between fetches
        claims = {"sub": "someone", "iss": key_server.url, "aud": key_server.url}
        signer, kid = key, key.kid
    else:
        if kind == "own":
            service = await start_service()
        else:
            settings = make_settings(DATABASE_URL=migrated_database)
            service = await aiohttp_client(create_app(settings))
        _, own = await user_token(service)
        claims = jwt.decode(own, options={"verify_signature": False})
        signer, kid = SigningKey("", "HS256", TEST_SECRET.encode()), None
    claims |= {"iat": now, "exp": now + 900}
    for header in hostile_headers(kid, signer.alg):
        token = signed_with_header(signer, header, claims)
        resp = await service.get(TASKS, headers=bearer(token))
        assert resp.status == 401, header
        body = await problem(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer"), header
        assert body["type"].endswith("/unauthorized"), header
    # The same claims under the right header are fine: only the header was wrong.
    good = signed_with_header(
        signer, {"alg": signer.alg, "typ": "JWT"} | ({"kid": kid} if kid else {}), claims
    )
    assert (await service.get(TASKS, headers=bearer(good))).status == 200
