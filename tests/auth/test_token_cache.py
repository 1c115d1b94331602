"""The verified-token cache (service.auth.tokens): a token checked once is
served from it, but only until its `exp` plus the leeway, and only while its
session lives: past either it is refused like any other token, cached or
not."""

from __future__ import annotations

import asyncio

import jwt
import psycopg
import time_machine

from service.auth.tokens import CHECK_SECONDS, LEEWAY_SECONDS
from tests.helpers import TASKS, assert_session_ended, bearer, problem, signup, user_token

ME = "/api/auth/me"


async def test_a_cached_token_is_refused_once_past_its_expiry(client):
    ann = await user_token(client)
    assert (await client.get(TASKS, headers=bearer(ann.token))).status == 200  # now cached
    expires = jwt.decode(ann.token, options={"verify_signature": False})["exp"]

    # time.time() and datetime move; the event loop's monotonic clock does not.
    with time_machine.travel(expires + LEEWAY_SECONDS - 2, tick=False):
        assert (await client.get(TASKS, headers=bearer(ann.token))).status == 200
    with time_machine.travel(expires + LEEWAY_SECONDS + 1, tick=False):
        body = await problem(await client.get(TASKS, headers=bearer(ann.token)), 401)
        assert "expired" in body["detail"]
        # Refused again: it left the cache, it does not come back.
        await problem(await client.get(TASKS, headers=bearer(ann.token)), 401)


async def test_a_session_ended_by_another_worker_is_refused_within_a_second(
    client, migrated_database
):
    """Another worker (or replica) signs the session out: here, its row is
    deleted behind this worker's back while the token sits in its cache."""
    body = await signup(client)
    token = body["access_token"]
    assert (await client.get(TASKS, headers=bearer(token))).status == 200  # now cached
    with psycopg.connect(migrated_database) as conn:
        conn.execute("DELETE FROM sessions WHERE user_id = %s", (body["user"]["id"],))
    # The contract's second: past this worker's CHECK_SECONDS, it looks again.
    await asyncio.sleep(CHECK_SECONDS)
    for path in (TASKS, ME, f"{TASKS}/00000000-0000-0000-0000-000000000000"):
        await problem(await client.get(path, headers=bearer(token)), 401)


async def test_a_signed_out_token_is_refused_without_asking_the_database_again(
    proxied_client, proxy
):
    """Once a worker has seen a session end, it refuses that token from
    memory: sending it again and again costs no query (here, with the
    database cut off, it is still a 401 and never a 503)."""
    client = proxied_client
    token = (await signup(client))["access_token"]
    assert (await client.post("/api/auth/signout", headers=bearer(token))).status == 204
    proxy.set_mode("refuse")
    for _ in range(3):
        await assert_session_ended(client, token)
