"""Live events across processes: a write served by one process reaches a
stream held by another (two workers; two replicas on one database), and a
shutdown ends open streams at once, with a hint to reconnect elsewhere."""

from __future__ import annotations

import signal

import aiohttp

from tests.conftest import base_env
from tests.events.test_events import EVENTS, next_event
from tests.launcher import launched

PASSWORD = "correct horse"


async def _signup(http: aiohttp.ClientSession, url: str, email: str) -> str:
    body = {"email": email, "password": PASSWORD, "name": "Ann"}
    async with http.post(f"{url}/api/auth/signup", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return (await resp.json())["access_token"]


async def _writes_reach_the_stream(stream_url: str, write_urls: list[str], token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        stream = await http.get(f"{stream_url}{EVENTS}", headers=auth)
        assert stream.status == 200
        titles = [f"from {n}" for n in range(6)]
        for n, title in enumerate(titles):
            # A connection of its own each time: the workers take turns.
            async with aiohttp.ClientSession() as once:
                url = write_urls[n % len(write_urls)]
                resp = await once.post(f"{url}/api/tasks", json={"title": title}, headers=auth)
                assert resp.status == 201
        seen: list[str] = []
        while len(seen) < len(titles):
            event = await next_event(stream)
            title = event["data"].split('"title":"')[1].split('"')[0]
            if title not in seen:
                seen.append(title)
        assert sorted(seen) == sorted(titles)
        stream.close()


async def test_writes_on_any_worker_reach_a_stream_on_another(migrated_database):
    env = {**base_env(migrated_database), "BCRYPT_ROUNDS": "4"}
    with launched(env, "--workers", "2") as service:
        async with aiohttp.ClientSession() as http:
            token = await _signup(http, service.url, "ann@example.com")
        await _writes_reach_the_stream(service.url, [service.url], token)


async def test_writes_on_one_replica_reach_a_stream_on_another(migrated_database):
    env = {**base_env(migrated_database), "BCRYPT_ROUNDS": "4"}
    with launched(env) as first, launched(env) as second:
        async with aiohttp.ClientSession() as http:
            token = await _signup(http, first.url, "ann@example.com")
        await _writes_reach_the_stream(first.url, [second.url], token)


async def test_shutdown_ends_streams_at_once_with_a_reconnect_hint(migrated_database):
    env = {**base_env(migrated_database), "BCRYPT_ROUNDS": "4", "SHUTDOWN_TIMEOUT": "30"}
    with launched(env) as service:
        async with aiohttp.ClientSession() as http:
            token = await _signup(http, service.url, "ann@example.com")
            stream = await http.get(
                f"{service.url}{EVENTS}", headers={"Authorization": f"Bearer {token}"}
            )
            assert stream.status == 200
            service.send_signal(signal.SIGTERM)
            # The server ends the stream (the client keeps it open), within
            # the drain, which SHUTDOWN_TIMEOUT would otherwise make long.
            event = await next_event(stream)
            assert event["retry"].isdigit()
            assert (await stream.content.read()) == b""
            assert service.stop() == 0
