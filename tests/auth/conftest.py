"""A real Better Auth server (tests/betterauth/server.mjs: the npm package
with its JWT plugin, on its own throwaway PostgreSQL database), and the
service configured to accept its tokens."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest

from service.app import create_app
from tests.conftest import (
    REPO_ROOT,
    TEST_SECRET,
    create_database,
    drop_database,
    make_settings,
)
from tests.launcher import free_port

SERVER_DIR = REPO_ROOT / "tests" / "betterauth"
NODE = shutil.which("node") or "node"
START_TIMEOUT = 60.0


@dataclass
class BetterAuthUser:
    id: str  # Better Auth's user id: the token's `sub`
    email: str
    name: str
    session_cookie: str


@dataclass
class BetterAuthServer:
    url: str
    proc: subprocess.Popen
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    async def sign_up(self, email: str | None = None, name: str = "Ann") -> BetterAuthUser:
        """A new user, through Better Auth's own /api/auth/sign-up/email."""
        email = email or f"ba-{uuid.uuid4().hex[:10]}@example.com"
        async with aiohttp.ClientSession() as http:
            resp = await http.post(
                f"{self.url}/api/auth/sign-up/email",
                json={"email": email, "password": "correct horse battery", "name": name},
            )
            assert resp.status == 200, await resp.text()
            body = await resp.json()
            cookie = resp.cookies["better-auth.session_token"].value
        return BetterAuthUser(body["user"]["id"], email, name, cookie)

    async def token(self, user: BetterAuthUser) -> str:
        """A JWT from the plugin's /api/auth/token, as the frontend gets one."""
        async with aiohttp.ClientSession() as http:
            resp = await http.get(
                f"{self.url}/api/auth/token",
                headers={"Cookie": f"better-auth.session_token={user.session_cookie}"},
            )
            assert resp.status == 200, await resp.text()
            return (await resp.json())["token"]

    async def jwks(self) -> dict:
        async with aiohttp.ClientSession() as http:
            resp = await http.get(f"{self.url}/api/auth/jwks")
            assert resp.status == 200
            return await resp.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)  # reads to the end of the output
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def running_better_auth(alg: str | None = None) -> Iterator[BetterAuthServer]:
    """Start server.mjs on a free port and its own database; stop both after."""
    database = create_database("todo_betterauth")
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": database,
        # Shared with the service, as the frontend's setup has it.
        "BETTER_AUTH_SECRET": TEST_SECRET,
        "NODE_ENV": "test",
    }
    if alg:
        env["JWT_ALG"] = alg
    proc = subprocess.Popen(
        [NODE, "server.mjs"],
        cwd=SERVER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = BetterAuthServer(f"http://127.0.0.1:{port}", proc)
    try:
        _wait_for_ready(server)
        yield server
    finally:
        server.stop()
        drop_database(database)


def _wait_for_ready(server: BetterAuthServer) -> None:
    """Wait until the server says "ready" (or exits); its output is drained
    all along, so it never blocks on a full pipe."""
    ready = threading.Event()

    def drain() -> None:
        for line in server.proc.stdout or ():
            server.output.append(line)
            if line.strip() == "ready":
                ready.set()
        ready.set()  # it exited

    server.reader = threading.Thread(target=drain, daemon=True)
    server.reader.start()
    ready.wait(START_TIMEOUT)
    if not any(line.strip() == "ready" for line in server.output):
        pytest.fail(f"Better Auth did not start: {''.join(server.output)}")


@pytest.fixture(scope="session")
def better_auth() -> Iterator[BetterAuthServer]:
    """Better Auth with the JWT plugin's defaults (EdDSA, Ed25519)."""
    with running_better_auth() as server:
        yield server


@pytest.fixture(scope="session")
def better_auth_es256() -> Iterator[BetterAuthServer]:
    with running_better_auth("ES256") as server:
        yield server


@pytest.fixture
async def ba_client(aiohttp_client, migrated_database, better_auth):
    """The service, accepting the default Better Auth server's tokens."""
    settings = make_settings(DATABASE_URL=migrated_database, BETTER_AUTH_URL=better_auth.url)
    return await aiohttp_client(create_app(settings))
