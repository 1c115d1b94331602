"""Idempotency-Key (service/tasks/idempotency.py) on task creation, PATCH
and the completion toggle: replays, refusals, and what is never kept."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import asyncpg
import pytest

from service.app import create_app
from service.tasks.idempotency import parse_key
from service.tasks.routes import _IDEMPOTENCY
from tests.conftest import base_env, make_settings
from tests.helpers import PASSWORD, TASKS, bearer, make_task, problem, user_token
from tests.launcher import launched, wait_until_async

KEY = "Idempotency-Key"


@pytest.fixture
async def ann(client):
    return await user_token(client)


def keyed(token: str, key: str, **headers: str) -> dict[str, str]:
    return {**bearer(token), KEY: key, **headers}


async def kept_keys(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM idempotency_keys")
    finally:
        await conn.close()


async def task_count(client, token: str) -> int:
    return len(await (await client.get(TASKS, headers=bearer(token))).json())


async def test_a_retried_create_gets_the_first_answer_and_makes_one_task(client, ann):
    first = await client.post(TASKS, json={"title": "once"}, headers=keyed(ann.token, "k-1"))
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    again = await client.post(TASKS, json={"title": "once"}, headers=keyed(ann.token, '"k-1"'))
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == await first.read()
    for name in ("ETag", "Location", "Content-Type"):
        assert again.headers[name] == first.headers[name]
    assert await task_count(client, ann.token) == 1


async def test_the_same_key_with_another_request_is_a_422(client, ann):
    await client.post(TASKS, json={"title": "a"}, headers=keyed(ann.token, "k-2"))
    resp = await client.post(TASKS, json={"title": "b"}, headers=keyed(ann.token, "k-2"))
    body = await problem(resp, 422)
    assert KEY in body["errors"]
    assert await task_count(client, ann.token) == 1


async def test_another_accounts_key_is_its_own(client, ann):
    bob = await user_token(client, "bob@example.com")
    for user in (ann, bob):
        resp = await client.post(TASKS, json={"title": "t"}, headers=keyed(user.token, "same"))
        assert resp.status == 201
        assert "Idempotent-Replayed" not in resp.headers


async def test_a_retry_while_the_first_is_answered_is_a_409(aiohttp_client, migrated_database):
    # The first create waits on its account's counter row, which the test
    # holds locked; the retry meanwhile finds the key claimed and running.
    # (Two connections for the account, so the retry is not queued behind it.)
    settings = make_settings(DATABASE_URL=migrated_database, DB_MAX_PER_USER="5")
    client = await aiohttp_client(create_app(settings))
    ann = await user_token(client)
    locker = await asyncpg.connect(migrated_database)
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("SELECT 1 FROM task_totals FOR UPDATE")
        first = asyncio.ensure_future(
            client.post(TASKS, json={"title": "slow"}, headers=keyed(ann.token, "k-3"))
        )

        async def waiting() -> bool:
            return await locker.fetchval(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )

        await wait_until_async(waiting, "the first create to wait on the lock")
        retry = await client.post(TASKS, json={"title": "slow"}, headers=keyed(ann.token, "k-3"))
        await problem(retry, 409)
        await transaction.rollback()
        assert (await first).status == 201
    finally:
        await locker.close()
    replay = await client.post(TASKS, json={"title": "slow"}, headers=keyed(ann.token, "k-3"))
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await task_count(client, ann.token) == 1


async def test_an_expired_key_runs_the_request_again(client, ann, migrated_database):
    first = await client.post(TASKS, json={"title": "t"}, headers=keyed(ann.token, "k-4"))
    conn = await asyncpg.connect(migrated_database)
    try:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    finally:
        await conn.close()
    again = await client.post(TASKS, json={"title": "t"}, headers=keyed(ann.token, "k-4"))
    assert again.status == 201
    assert "Idempotent-Replayed" not in again.headers
    assert (await again.json())["id"] != (await first.json())["id"]


async def test_the_key_is_checked_before_if_match(client, ann):
    # A PATCH that succeeded, retried with its old If-Match: its answer, not a 412.
    task, etag = await make_task(client, ann.token)
    path, headers = f"{TASKS}/{task['id']}", keyed(ann.token, "k-5", **{"If-Match": etag})
    first = await client.patch(path, json={"title": "renamed"}, headers=headers)
    assert first.status == 200
    again = await client.patch(path, json={"title": "renamed"}, headers=headers)
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"] != etag


async def test_a_412_is_not_kept(client, ann, migrated_database):
    task, _ = await make_task(client, ann.token)
    path, headers = f"{TASKS}/{task['id']}", keyed(ann.token, "k-6", **{"If-Match": '"99"'})
    for _ in range(2):
        resp = await client.patch(path, json={"title": "x"}, headers=headers)
        await problem(resp, 412)
        assert "Idempotent-Replayed" not in resp.headers
    assert await kept_keys(migrated_database) == 0


async def test_a_422_is_kept(client, ann):
    for replayed in (False, True):
        resp = await client.post(TASKS, json={"title": ""}, headers=keyed(ann.token, "k-7"))
        await problem(resp, 422)
        assert ("Idempotent-Replayed" in resp.headers) is replayed


async def test_a_retried_completion_toggles_once(client, ann):
    task, _ = await make_task(client, ann.token)
    path = f"{TASKS}/{task['id']}/complete"
    for _ in range(3):
        resp = await client.patch(path, headers=keyed(ann.token, "k-8"))
        assert resp.status == 200
        assert (await resp.json())["completed"] is True


@pytest.mark.parametrize("key", ["", '""', "x" * 256, "clé", "tab\there"])
async def test_a_malformed_key_is_a_400(client, ann, key):
    resp = await client.post(TASKS, json={"title": "t"}, headers=keyed(ann.token, key))
    await problem(resp, 400)
    assert await task_count(client, ann.token) == 0


KEYS = ["a", '"a"', '""', '"', '"ab', 'ab"', "x" * 255, "x" * 256, f'"{"x" * 255}"', "clé", 'a"b']


@pytest.mark.parametrize("raw", KEYS)
def test_the_documented_pattern_takes_exactly_the_keys_the_service_takes(raw):
    pattern = re.compile(_IDEMPOTENCY["schema"]["pattern"])
    assert bool(pattern.fullmatch(raw)) == (parse_key(raw) is not None)


async def test_requests_without_a_key_keep_nothing(client, ann, migrated_database):
    await make_task(client, ann.token)
    assert await kept_keys(migrated_database) == 0


async def test_deleting_the_account_deletes_its_keys(client, ann, migrated_database):
    await client.post(TASKS, json={"title": "t"}, headers=keyed(ann.token, "k-9"))
    assert await kept_keys(migrated_database) == 1
    conn = await asyncpg.connect(migrated_database)
    try:
        await conn.execute("DELETE FROM users")
    finally:
        await conn.close()
    assert await kept_keys(migrated_database) == 0


def post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict, dict]:
    """A POST on a new connection: (status, headers, JSON body)."""
    request = urllib.request.Request(  # noqa: S310 - the test's own service
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        return resp.status, dict(resp.headers), json.loads(resp.read())


def test_every_worker_replays_what_another_answered(migrated_database):
    # Keys live in PostgreSQL: with two workers, retries on new connections
    # (the kernel spreads them over both) all get the one answer.
    with launched(base_env(migrated_database), "--workers", "2") as service:
        signup = {"email": "ann@example.com", "password": PASSWORD, "name": "Ann"}
        _, _, session = post(service.url + "/api/auth/signup", signup, {})
        headers = {"Authorization": f"Bearer {session['access_token']}", KEY: "workers"}
        answers = [post(service.url + TASKS, {"title": "t"}, headers) for _ in range(12)]
    assert {status for status, _, _ in answers} == {201}
    assert len({body["id"] for _, _, body in answers}) == 1
    assert [h.get("Idempotent-Replayed") for _, h, _ in answers] == [None] + ["true"] * 11
