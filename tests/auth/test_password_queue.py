"""A flood of sign-ins cannot queue everyone behind bcrypt (API.md, Limits):
the service admits what its threads finish in about a second and answers
the excess 503 at once. A real `todo-api serve` at bcrypt cost 12, so
hashing is slow enough for a queue to form."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import base_env
from tests.helpers import PASSWORD, PROBLEM
from tests.launcher import launched, wait_until_async

FLOOD = 48  # connections; 2 threads at cost 12 finish about 8 hashes a second
LIVENESS = 20  # seconds: only "answered at all", never a timing claim
SIGNIN = "/api/auth/signin"


def samples(text: str) -> dict[str, float]:
    """The metrics page as {sample name with labels: value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            found[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return found


async def test_a_signin_flood_gets_503_at_once_and_never_queues_anyone(migrated_database):
    env = {
        **base_env(migrated_database),
        "BCRYPT_ROUNDS": "12",
        "DB_POOL_MAX": "10",
        # The per-address and per-account rate limits would answer this flood
        # 429 before it reached bcrypt; here the queue itself is under test.
        "RATE_LIMIT_AUTH_PER_IP": "off",
        "RATE_LIMIT_SIGNIN_FAILURES": "off",
    }
    answers: list[tuple[int, str | None, dict]] = []
    stop = asyncio.Event()
    with launched(env) as service:
        url = service.url
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def metrics() -> dict[str, float]:
                async with http.get(url + "/metrics") as resp:
                    return samples(await resp.text())

            async def flooder(i: int) -> None:
                body = {"email": f"nobody{i}@example.com", "password": "wrong horse"}
                while not stop.is_set():
                    async with http.post(url + SIGNIN, json=body) as resp:
                        problem = await resp.json(content_type=PROBLEM)
                        answers.append((resp.status, resp.headers.get("Retry-After"), problem))

            async with http.post(
                url + "/api/auth/signup",
                json={"email": "ann@example.com", "password": PASSWORD, "name": "Ann"},
            ) as resp:
                assert resp.status == 201, await resp.text()
            capacity = (await metrics())["todo_password_hash_capacity"]
            assert capacity >= 2  # at least one hash per thread

            flood = [asyncio.create_task(flooder(i)) for i in range(FLOOD)]
            try:

                async def rejected_and_served() -> bool:
                    statuses = {status for status, _, _ in answers}
                    return {401, 503} <= statuses

                await wait_until_async(rejected_and_served, "no 503 and 401 in the flood", 60)
                # While the flood goes on: the work admitted never exceeds the
                # capacity, /health answers, and a real user is answered.
                for _ in range(5):
                    now = await metrics()
                    assert 0 <= now["todo_password_hashes_in_flight"] <= capacity, now
                async with asyncio.timeout(LIVENESS):
                    async with http.get(url + "/health") as resp:
                        assert resp.status == 200
                    async with http.post(
                        url + SIGNIN, json={"email": "ann@example.com", "password": PASSWORD}
                    ) as resp:
                        assert resp.status in (200, 503), await resp.text()
                        user_busy = resp.status == 503
            finally:
                stop.set()
                await asyncio.gather(*flood)

            after = await metrics()

    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {401, 503}
    # The 503s did not wait for bcrypt: some came before the first hash ended.
    assert statuses.index(503) < statuses.index(401), statuses[:20]
    busy = [(retry, problem) for status, retry, problem in answers if status == 503]
    for retry, problem in busy:
        assert retry is not None
        assert int(retry) >= 1
        assert problem["type"] == "/problems/busy"
        assert problem["instance"] == SIGNIN
        assert "retry" in problem["detail"]
    # An operator sees every one of them.
    rejected = after['todo_password_hash_rejected_total{kind="check"}']
    assert rejected == len(busy) + user_busy
    assert after["todo_password_hashes_in_flight"] == 0
