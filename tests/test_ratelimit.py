"""The rate limits (API.md "Limits", service/ratelimit.py): sign-in failures
per account, sign-up and sign-in attempts per client address, authenticated
requests per user; memory and the real Redis on 127.0.0.1:6379; clients on
different loopback addresses (127.0.0.2, 127.0.0.3 ... are all this machine)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import random
import re
import unicodedata
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import orjson
import pytest
import redis
from prometheus_client import REGISTRY

from service import keys
from service.app import create_app
from service.errors import TooManyRequests
from service.ratelimit import RateLimits
from tests.conftest import REPO_ROOT, base_env, make_settings
from tests.helpers import TASKS, bearer, problem, signup
from tests.launcher import free_port, launched, wait_until_async
from tests.proxy import TcpProxy

REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse"
WRONG = "wrong password"
LOCKOUT = {"RATE_LIMIT_SIGNIN_FAILURES": "3/2seconds"}


def app_with(database_url: str, **env: str):
    return create_app(make_settings(DATABASE_URL=database_url, **env))


@pytest.fixture
def client_with(aiohttp_client, migrated_database):
    """The app on the test database with these settings, under aiohttp_client."""

    async def make(**env: str):
        return await aiohttp_client(app_with(migrated_database, **env))

    return make


async def signin(client, email: str, password: str, **kw):
    return await client.post("/api/auth/signin", json={"email": email, "password": password}, **kw)


def assert_rate_limited(resp, policy: str, quota: int, window: int) -> int:
    """The 429's headers: Retry-After in whole seconds, and the IETF
    RateLimit-Policy / RateLimit fields saying the same. Its seconds."""
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= window
    assert resp.headers["RateLimit-Policy"] == f'"{policy}";q={quota};w={window}'
    assert resp.headers["RateLimit"] == f'"{policy}";r=0;t={retry_after}'
    return retry_after


# --- sign-in failures per account ---------------------------------------------


async def test_a_locked_account_refuses_even_the_right_password(client_with):
    client = await client_with(**LOCKOUT)
    await signup(client, "ann@example.com", PASSWORD)
    await signup(client, "bob@example.com", PASSWORD)
    for _ in range(3):
        assert (await signin(client, "ann@example.com", WRONG)).status == 401

    resp = await signin(client, "ann@example.com", PASSWORD)
    body = await problem(resp, 429)
    seconds = assert_rate_limited(resp, "signin-failures", 3, 2)
    assert "failed sign-ins for this account" in body["detail"]
    assert f"retry in {seconds} seconds" in body["detail"]
    # Every spelling of the email is the one account.
    for spelling in ("ANN@Example.COM", " ann@example.com ", "\uff41\uff4e\uff4e@example.com"):
        assert (await signin(client, spelling, PASSWORD)).status == 429
    # Nobody else is locked out.
    assert (await signin(client, "bob@example.com", PASSWORD)).status == 200

    async def signs_in() -> bool:
        return (await signin(client, "ann@example.com", PASSWORD)).status == 200

    await wait_until_async(signs_in, "the right password did not sign in after the window")


async def test_a_locked_account_costs_no_password_hashing(aiohttp_client, migrated_database):
    app = app_with(migrated_database, **LOCKOUT)
    client = await aiohttp_client(app)
    await signup(client, "ann@example.com", PASSWORD)
    for _ in range(3):
        assert (await signin(client, "ann@example.com", WRONG)).status == 401
    # No bcrypt can run any more; the locked account is answered all the same.
    app[keys.PASSWORDS].executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        app[keys.PASSWORDS].executor.submit(int)
    for _ in range(5):
        await problem(await signin(client, "ann@example.com", PASSWORD), 429)


async def test_signing_in_starts_the_failures_over(client_with):
    client = await client_with(RATE_LIMIT_SIGNIN_FAILURES="3/minute")
    await signup(client, "ann@example.com", PASSWORD)
    for _ in range(3):
        for _ in range(2):
            assert (await signin(client, "ann@example.com", WRONG)).status == 401
        assert (await signin(client, "ann@example.com", PASSWORD)).status == 200
    for _ in range(3):
        assert (await signin(client, "ann@example.com", WRONG)).status == 401
    await problem(await signin(client, "ann@example.com", PASSWORD), 429)


async def test_the_failures_of_an_unknown_email_are_counted_alike(client_with):
    client = await client_with(**LOCKOUT)
    for _ in range(3):
        assert (await signin(client, "nobody@example.com", WRONG)).status == 401
    await problem(await signin(client, "nobody@example.com", WRONG), 429)


# An address the database takes for "xyz.i@example.com": lower() makes U+0130
# a plain "i", while Python's casefold() makes it "i" and a combining dot.
PLAIN = "xyz.i@example.com"
DOTTED = "XYZ.\u0130@example.com"
ME = "/api/auth/me"


async def dotted_reaches_plain(database_url: str) -> None:
    """The precondition, asked of the database itself: its sign-in statement
    finds the account signed up as PLAIN under DOTTED too."""
    statement = (REPO_ROOT / "sql" / "queries" / "auth" / "get_user_for_signin.sql").read_text()
    conn = await asyncpg.connect(database_url)
    try:
        ids = [(await conn.fetchrow(statement, email))["id"] for email in (PLAIN, DOTTED)]
    finally:
        await conn.close()
    assert ids[0] is not None
    assert ids[1] == ids[0], "this database's lower() does not take U+0130 to i (its LC_CTYPE)"
    assert unicodedata.normalize("NFKC", DOTTED).casefold() != PLAIN


async def test_every_spelling_the_database_takes_shares_the_accounts_lockout(
    client_with, migrated_database
):
    client = await client_with(
        RATE_LIMIT_SIGNIN_FAILURES="4/minute", TRUSTED_PROXIES="127.0.0.1/32"
    )
    await signup(client, PLAIN, PASSWORD)
    await dotted_reaches_plain(migrated_database)
    assert (await signin(client, DOTTED, PASSWORD)).status == 200

    # Concurrent wrong guesses, alternating spellings, each from its own
    # address (the password queue holds only a few places per address): the
    # limit, not one per spelling.
    guesses = [
        signin(
            client,
            (PLAIN, DOTTED)[n % 2],
            WRONG,
            headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
        )
        for n in range(8)
    ]
    statuses = sorted(resp.status for resp in await asyncio.gather(*guesses))
    assert statuses == [401] * 4 + [429] * 4
    for spelling in (DOTTED, PLAIN):
        resp = await signin(client, spelling, PASSWORD)
        await problem(resp, 429)
        assert_rate_limited(resp, "signin-failures", 4, 60)


async def test_password_checks_count_on_the_sign_in_lockout_of_their_account(
    client_with, migrated_database
):
    client = await client_with(RATE_LIMIT_SIGNIN_FAILURES="3/minute")
    token = (await signup(client, PLAIN, PASSWORD))["access_token"]
    await dotted_reaches_plain(migrated_database)
    change = {"current_password": WRONG, "new_password": "another horse battery"}
    await problem(await client.put("/api/auth/password", json=change, headers=bearer(token)), 403)
    wrong = {"password": WRONG}
    await problem(await client.request("DELETE", ME, json=wrong, headers=bearer(token)), 403)
    assert (await signin(client, DOTTED, WRONG)).status == 401
    # Locked for every way of presenting the password.
    await problem(await signin(client, DOTTED, PASSWORD), 429)
    right = {"password": PASSWORD}
    await problem(await client.request("DELETE", ME, json=right, headers=bearer(token)), 429)


async def test_the_sign_in_lookup_answers_the_databases_form_from_its_index(migrated_database):
    statement = (REPO_ROOT / "sql" / "queries" / "auth" / "get_user_for_signin.sql").read_text()
    conn = await asyncpg.connect(migrated_database)
    try:
        # An address with no account still has a row: the form the lockout keys on.
        row = await conn.fetchrow(statement, "Nobody.\u0130@\uff25xample.com")
        assert (row["id"], row["email_key"]) == (None, "nobody.i@example.com")
        await conn.execute("SET enable_seqscan = off")  # an empty table would be read whole
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", DOTTED)
    finally:
        await conn.close()
    assert '"Index Name": "users_password_email_key"' in plan


# --- attempts per client address ----------------------------------------------


@contextlib.asynccontextmanager
async def session_from(address: str, **kw) -> AsyncIterator[aiohttp.ClientSession]:
    """A real client whose connections come from `address`."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector, **kw) as session:
        yield session


async def test_one_address_is_refused_while_another_is_served(aiohttp_server, migrated_database):
    server = await aiohttp_server(app_with(migrated_database, RATE_LIMIT_AUTH_PER_IP="3/minute"))
    signup_url, signin_url = (
        server.make_url("/api/auth/signup"),
        server.make_url("/api/auth/signin"),
    )
    ann = {"email": "ann@example.com", "password": PASSWORD}
    async with session_from("127.0.0.2") as first, session_from("127.0.0.3") as second:
        resp = await first.post(signup_url, json={**ann, "name": "Ann"})
        assert resp.status == 201
        for _ in range(2):
            assert (await first.post(signin_url, json={**ann, "password": WRONG})).status == 401
        resp = await first.post(signin_url, json=ann)
        body = await problem(resp, 429)
        assert_rate_limited(resp, "auth-per-address", 3, 60)
        assert "attempts from this address" in body["detail"]
        # Sign-up counts against the same limit.
        resp = await first.post(signup_url, json={**ann, "email": "bob@example.com", "name": "B"})
        await problem(resp, 429)

        assert (await second.post(signin_url, json=ann)).status == 200
        resp = await second.post(signup_url, json={**ann, "email": "cy@example.com", "name": "C"})
        assert resp.status == 201


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    aiohttp_server, migrated_database, caplog
):
    caplog.set_level(logging.INFO, "service.access")
    server = await aiohttp_server(
        app_with(
            migrated_database,
            RATE_LIMIT_AUTH_PER_IP="2/minute",
            TRUSTED_PROXIES="127.0.0.2/32,10.0.0.0/8",
        )
    )
    url = server.make_url("/api/auth/signin")
    guess = {"email": "ann@example.com", "password": WRONG}

    async def attempt(session, forwarded: str) -> int:
        resp = await session.post(url, json=guess, headers={"X-Forwarded-For": forwarded})
        return resp.status

    async with session_from("127.0.0.3") as direct, session_from("127.0.0.2") as proxy:
        # Not a proxy: whatever it claims, it is 127.0.0.3.
        statuses = [await attempt(direct, f"198.51.100.{i}") for i in range(3)]
        assert statuses == [401, 401, 429]
        # The proxy's clients are told apart by the entry it appended ...
        assert [await attempt(proxy, "203.0.113.7") for _ in range(3)] == [401, 401, 429]
        # ... through more trusted hops, past what the client wrote itself.
        assert await attempt(proxy, "1.2.3.4, 203.0.113.7, 10.1.1.1") == 429
        assert await attempt(proxy, "203.0.113.7, 203.0.113.8, 10.1.1.1") == 401
        # Junk is never a 500, nor a fresh key the client picks.
        for junk in ("garbage", "203.0.113.9, garbage", ", ,", "[::1", "999.1.1.1"):
            assert await attempt(proxy, junk) in (401, 429)

    clients = [r.client for r in caplog.records if r.name == "service.access"]
    assert clients[:3] == ["127.0.0.3"] * 3
    assert clients[3:7] == ["203.0.113.7"] * 4
    assert clients[7] == "203.0.113.8"
    assert set(clients[8:]) == {"127.0.0.2"}  # junk: the last hop we trust


async def test_an_ipv6_48_has_its_own_limit_above_its_64s(client_with, caplog):
    caplog.set_level(logging.WARNING, "service.ratelimit")
    client = await client_with(
        RATE_LIMIT_AUTH_PER_IP="2/minute",
        RATE_LIMIT_AUTH_PER_IPV6_48="3/minute",
        TRUSTED_PROXIES="127.0.0.1/32",
    )

    async def attempt(forwarded: str):
        headers = {"X-Forwarded-For": forwarded}
        return await signin(client, "ann@example.com", WRONG, headers=headers)

    # One /64 is refused at its own limit; what it was refused does not fill its /48.
    statuses = [(await attempt("2001:db8:1:1::5")).status for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert (await attempt("2001:db8:1:2::5")).status == 401
    # A fourth attempt from the /48, from a /64 of its own: the /48's limit.
    resp = await attempt("2001:db8:1:3::5")
    body = await problem(resp, 429)
    assert_rate_limited(resp, "auth-per-ipv6-48", 3, 60)
    assert "this network (IPv6 /48)" in body["detail"]
    assert (await attempt("2001:db8:1:ffff::1")).status == 429
    # Another /48, and IPv4 clients, are served.
    assert (await attempt("2001:db8:2::5")).status == 401
    assert (await attempt("2001:db8:2:1::5")).status == 401
    assert (await attempt("198.51.100.7")).status == 401
    limited = [r.getMessage() for r in caplog.records if "rate limit" in r.getMessage()]
    assert [m.split()[2] for m in limited] == ["auth-per-address"] + ["auth-per-ipv6-48"] * 2
    assert "from 2001:db8:1:3::5" in limited[1]


def post_from(service, source: str, path: str, body: dict, host: str = "127.0.0.1") -> int:
    """POST to a running service from the local address `source` (to `host`,
    which on a dual-stack listener may be IPv4 or IPv6); its status."""
    conn = http.client.HTTPConnection(host, service.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def access_lines(service, path: str) -> list[dict]:
    lines = (json.loads(line) for line in service.output().splitlines() if line.startswith("{"))
    return [line for line in lines if line["logger"] == "service.access" and line["path"] == path]


def test_ipv4_clients_of_a_dual_stack_listener_are_each_their_own_address(migrated_database):
    # `serve --host ::` takes IPv4 connections too, their peers written
    # ::ffff:a.b.c.d: each is still its own IPv4 address, not one IPv6 /64.
    env = {**base_env(migrated_database), "RATE_LIMIT_AUTH_PER_IP": "2/minute"}
    guess = {"email": "ann@example.com", "password": WRONG}
    path = "/api/auth/signin"
    with launched(env, "--host", "::") as service:
        assert [post_from(service, "127.0.0.2", path, guess) for _ in range(3)] == [401, 401, 429]
        assert post_from(service, "127.0.0.3", path, guess) == 401
        assert post_from(service, "::1", path, guess, host="::1") == 401
        service.stop()
        clients = [line["client"] for line in access_lines(service, path)]
    assert clients == ["127.0.0.2"] * 3 + ["127.0.0.3", "::1"]


# --- requests per user ----------------------------------------------------------


async def test_one_users_requests_are_refused_while_another_is_served(client_with):
    client = await client_with(RATE_LIMIT_PER_USER="5/minute")
    ann = (await signup(client, "ann@example.com", PASSWORD))["access_token"]
    bob = (await signup(client, "bob@example.com", PASSWORD))["access_token"]
    for _ in range(5):
        assert (await client.get("/api/tasks", headers=bearer(ann))).status == 200
    resp = await client.get("/api/auth/me", headers=bearer(ann))
    body = await problem(resp, 429)
    assert_rate_limited(resp, "per-user", 5, 60)
    assert "Too many requests for this account" in body["detail"]
    assert (await client.get("/api/tasks", headers=bearer(bob))).status == 200
    # Health and the public routes are not per-user.
    assert (await client.get("/health")).status == 200


async def test_the_ratelimit_headers_are_exposed_to_the_frontend(client_with):
    client = await client_with(RATE_LIMIT_PER_USER="1/minute")
    ann = (await signup(client, "ann@example.com", PASSWORD))["access_token"]
    origin = {"Origin": "http://localhost:3000"}
    await client.get("/api/tasks", headers={**bearer(ann), **origin})
    resp = await client.get("/api/tasks", headers={**bearer(ann), **origin})
    assert resp.status == 429
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "ratelimit", "ratelimit-policy"} <= exposed


# --- logs ---------------------------------------------------------------------


async def test_failed_sign_ins_and_429s_are_warnings_without_the_email(client_with, caplog):
    caplog.set_level(logging.INFO)
    client = await client_with(**LOCKOUT, RATE_LIMIT_PER_USER="1/minute")
    token = (await signup(client, "ann@example.com", PASSWORD))["access_token"]
    for _ in range(4):
        await signin(client, "ann@example.com", WRONG)
    for _ in range(2):
        await client.get("/api/tasks", headers=bearer(token))

    warnings = [r for r in caplog.records if r.name == "service.ratelimit"]
    assert all(r.levelno == logging.WARNING for r in warnings)
    failed = [r.getMessage() for r in warnings if "sign-in failed" in r.getMessage()]
    limited = [r.getMessage() for r in warnings if "rate limit" in r.getMessage()]
    assert len(failed) == 3
    assert all("from 127.0.0.1" in m for m in failed)
    assert len(limited) == 2
    assert "signin-failures" in limited[0]
    assert "per-user" in limited[1]
    assert re.search(r"user [0-9a-f-]{36} from 127\.0\.0\.1", limited[1])
    # One account, one short hash in every line about it.
    hashes = {re.search(r"account ([0-9a-f]{12})", m)[1] for m in [*failed, limited[0]]}
    assert len(hashes) == 1
    everything = caplog.text + json.dumps([vars(r) for r in caplog.records], default=str)
    assert "ann@example.com" not in everything


# --- storage -------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the real Redis, and those keys
    removed afterwards (nobody else's)."""
    prefix = f"todo-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as r:
        stale = list(r.scan_iter(match=f"{prefix}:*"))
        if stale:
            r.delete(*stale)


def post_json(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - local
        url,
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    return _answer(request)


def get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers=bearer(token))  # noqa: S310 - local
    return _answer(request)[0]


def _answer(request: urllib.request.Request) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"{}")


def redis_env(database_url: str, prefix: str, **limits: str) -> dict[str, str]:
    return {
        **base_env(database_url),
        "RATE_LIMIT_STORAGE": REDIS_URL,
        "RATE_LIMIT_KEY_PREFIX": prefix,
        **limits,
    }


def test_two_services_share_the_counts_through_redis(migrated_database, redis_prefix):
    env = redis_env(
        migrated_database,
        redis_prefix,
        RATE_LIMIT_PER_USER="6/minute",
        RATE_LIMIT_SIGNIN_FAILURES="3/minute",
    )
    with launched(env) as a, launched(env) as b:
        ann = {"email": "ann@example.com", "password": PASSWORD}
        status, session = post_json(a.url + "/api/auth/signup", {**ann, "name": "Ann"})
        assert status == 201
        token = session["access_token"]
        statuses = [get(service.url + "/api/tasks", token) for service in [a, b] * 4]
        assert statuses == [200] * 6 + [429] * 2

        for service in (a, b, a):
            assert post_json(service.url + "/api/auth/signin", {**ann, "password": WRONG})[0] == 401
        assert post_json(b.url + "/api/auth/signin", ann)[0] == 429
        assert post_json(a.url + "/api/auth/signin", ann)[0] == 429

    with redis.Redis.from_url(REDIS_URL) as r:
        stored = [key.decode() for key in r.scan_iter(match=f"{redis_prefix}:*")]
    assert stored  # the counts were in Redis, under this prefix
    assert not [key for key in stored if "example.com" in key]  # accounts by hash only


def test_the_workers_of_one_service_share_the_counts_through_redis(migrated_database, redis_prefix):
    env = redis_env(migrated_database, redis_prefix, RATE_LIMIT_PER_USER="10/minute")
    with launched(env, "--workers", "2") as service:
        body = {"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}
        status, session = post_json(service.url + "/api/auth/signup", body)
        assert status == 201
        # A new connection per request: the kernel spreads them over both workers.
        statuses = [get(service.url + "/api/tasks", session["access_token"]) for _ in range(30)]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 20


async def test_an_unreachable_redis_fails_auth_closed_and_serves_users(client_with, caplog):
    caplog.set_level(logging.INFO, "service.ratelimit")
    memory = await client_with()
    token = (await signup(memory, "ann@example.com", PASSWORD))["access_token"]
    down = await client_with(RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0")
    resp = await signin(down, "ann@example.com", PASSWORD)
    await problem(resp, 503)
    assert int(resp.headers["Retry-After"]) >= 1
    resp = await down.post("/api/auth/signup", json={"email": "b@example.com", "password": "x"})
    await problem(resp, 503)
    for _ in range(5):
        assert (await down.get("/api/tasks", headers=bearer(token))).status == 200
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # at most one a few seconds, not one a request
    assert "rate-limit storage unreachable" in errors[0].getMessage()


FALLBACK = "todo_rate_limit_storage_fallback"
FALLBACKS = "todo_rate_limit_storage_fallbacks_total"


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_while_redis_is_unreachable_the_per_user_limit_counts_in_memory(
    client_with, redis_prefix, caplog
):
    caplog.set_level(logging.INFO, "service.ratelimit")
    link = TcpProxy("127.0.0.1", 6379)  # the real Redis, through a link the test cuts
    await link.start()
    try:
        client = await client_with(
            RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{link.port}/0",
            RATE_LIMIT_KEY_PREFIX=redis_prefix,
            RATE_LIMIT_PER_USER="3/minute",
        )
        session = await signup(client, "ann@example.com", PASSWORD)
        ann, ann_id = session["access_token"], session["user"]["id"]
        bob = (await signup(client, "bob@example.com", PASSWORD))["access_token"]
        began, falling_back = sample(FALLBACKS), sample(FALLBACK)

        link.set_mode("refuse")
        statuses = [(await client.get(TASKS, headers=bearer(ann))).status for _ in range(3)]
        assert statuses == [200] * 3
        resp = await client.get(TASKS, headers=bearer(ann))
        await problem(resp, 429)
        assert_rate_limited(resp, "per-user", 3, 60)
        assert (await client.get(TASKS, headers=bearer(bob))).status == 200
        # Sign-in still fails closed, without waiting on Redis.
        resp = await signin(client, "ann@example.com", PASSWORD)
        await problem(resp, 503)
        assert 1 <= int(resp.headers["Retry-After"]) <= 5
        assert (sample(FALLBACKS), sample(FALLBACK)) == (began + 1, falling_back + 1)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1  # one line an outage, not one a request
        assert "counts in this process" in errors[0].getMessage()

        link.set_mode("pass")

        async def back() -> bool:
            await client.get(TASKS, headers=bearer(bob))  # Redis is tried on a request
            return sample(FALLBACK) == falling_back

        await wait_until_async(back, "the limits did not go back to Redis")
        assert sample(FALLBACKS) == began + 1
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        # Counted in Redis again: ann's count there starts afresh and is stored.
        statuses = [(await client.get(TASKS, headers=bearer(ann))).status for _ in range(4)]
        assert statuses == [200] * 3 + [429]
        with redis.Redis.from_url(REDIS_URL) as r:
            keys = list(r.scan_iter(match=f"{redis_prefix}:*/per-user/{ann_id}/*"))
            assert [int(r.get(key)) for key in keys] == [4]
        assert (await signin(client, "ann@example.com", PASSWORD)).status == 200
    finally:
        await link.stop()


# --- documentation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/auth/signin"),
        ("post", "/api/auth/signup"),
        ("get", "/api/tasks"),
        ("delete", "/api/tasks/{id}"),
        ("get", "/api/auth/me"),
    ],
)
def test_429_is_documented_with_its_headers(method, path):
    app = create_app(make_settings(DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"))
    document = orjson.loads(app[keys.OPENAPI])
    answer = document["paths"][path][method]["responses"]["429"]
    assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(answer["headers"])
    assert set(document["components"]["headers"]) >= {"RateLimit-Policy", "RateLimit"}


# --- the per-user limit in Redis, counted in blocks ------------------------------


def limits_in_redis(database_url: str, prefix: str, per_user: str) -> RateLimits:
    """RateLimits as one process of the service has them, counting in the real Redis,
    with every INCRBY it sends recorded (its amount) on the side."""
    settings = make_settings(
        DATABASE_URL=database_url,
        RATE_LIMIT_STORAGE=REDIS_URL,
        RATE_LIMIT_KEY_PREFIX=prefix,
        RATE_LIMIT_PER_USER=per_user,
    )
    limits = RateLimits(settings)
    limits.sent = []
    storage, incr = limits._storage, limits._storage.incr

    async def recorded(key: str, expiry: int, amount: int = 1) -> int:
        limits.sent.append(amount)
        return await incr(key, expiry, amount=amount)

    storage.incr = recorded
    return limits


async def admitted(limits: RateLimits, user: uuid.UUID) -> bool:
    try:
        await limits.count_request(user, "127.0.0.1")
    except TooManyRequests:
        return False
    return True


async def test_a_user_far_below_the_limit_costs_redis_one_round_trip_a_block(
    migrated_database, redis_prefix
):
    limits = limits_in_redis(migrated_database, redis_prefix, "1600/minute")
    user = uuid.uuid4()
    try:
        assert [await admitted(limits, user) for _ in range(100)] == [True] * 100
        # The first request learns the count; the next block is a 16th of what is left.
        assert limits.sent == [1, (1600 - 1) // 16]
        with redis.Redis.from_url(REDIS_URL) as r:
            [key] = r.scan_iter(match=f"{redis_prefix}:*/per-user/{user}/*")
            assert int(r.get(key)) == 100  # counted before they were admitted
    finally:
        await limits.close()


async def test_processes_sharing_redis_admit_exactly_the_limit_between_them(
    migrated_database, redis_prefix
):
    # Blocks shrink as the window fills, down to one request: however the
    # requests fall on the processes, never more than the limit is admitted,
    # and once every process is refused none of the limit is left unused.
    # A refused process refuses without asking Redis until the window ends.
    processes = [limits_in_redis(migrated_database, redis_prefix, "300/minute") for _ in range(3)]
    user = uuid.uuid4()
    turns = random.Random(27)
    try:
        answers = [await admitted(turns.choice(processes), user) for _ in range(600)]
        for limits in processes:  # each until refused: blocks still held are used up
            while await admitted(limits, user):
                answers.append(True)
        assert answers.count(True) == 300
        assert sum(len(limits.sent) for limits in processes) < 100  # of 900 requests
    finally:
        for limits in processes:
            await limits.close()
