"""Small helpers the tests share."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import asyncpg

PROBLEM = "application/problem+json"
TASKS = "/api/tasks"
# Passwords sign-up accepts (not guessable, service/auth/strength.py): one
# of the minimum length, one of several words.
SHORT_PASSWORD = "fjords42"
PASSWORD = "correct horse"


class User(NamedTuple):
    id: str
    token: str


class CreatedTask(NamedTuple):
    task: dict
    etag: str


class Walk(NamedTuple):
    tasks: list[dict]
    pages: int


async def problem(resp, status: int) -> dict[str, Any]:
    """Assert `resp` is an RFC 9457 problem document with `status` (for the
    path asked about, leaking no traceback); return its body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    body = await resp.json(content_type=PROBLEM)
    assert body["status"] == status
    assert body["type"]
    assert body["title"]
    assert body["instance"] == resp.url.path
    assert "Traceback" not in str(body)
    return body


async def signup(client, email="ann@example.com", password=PASSWORD, name="Ann"):
    resp = await client.post(
        "/api/auth/signup", json={"email": email, "password": password, "name": name}
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_session_ended(client, token: str, path: str = TASKS) -> None:
    """`token` was signed out: `path` answers it 401 session-ended."""
    body = await problem(await client.get(path, headers=bearer(token)), 401)
    assert body["type"].endswith("/session-ended")


async def user_token(client, email="ann@example.com") -> User:
    """Sign up a user; their id and token."""
    body = await signup(client, email=email)
    return User(body["user"]["id"], body["access_token"])


async def make_task(client, token: str, **fields) -> CreatedTask:
    """Create a task; it and its ETag."""
    payload = {"title": "a task", **fields}
    resp = await client.post(TASKS, json=payload, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return CreatedTask(await resp.json(), resp.headers["ETag"])


def next_link(resp) -> str | None:
    link = resp.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return match[1]


async def walk(client, token: str, query: str) -> Walk:
    """Every page of the listing from `query` on, following Link."""
    url, tasks, pages = f"{TASKS}?{query}", [], 0
    while url:
        resp = await client.get(url, headers=bearer(token))
        assert resp.status == 200, await resp.text()
        tasks += await resp.json()
        pages += 1
        link = next_link(resp)
        if link:
            parts = urlsplit(link)
            assert parts.scheme in ("http", "https")
            assert parts.netloc
            url = f"{parts.path}?{parts.query}"
        else:
            url = None
        assert pages < 100
    return Walk(tasks, pages)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def covering_text(q: str, length: int = 2000) -> str:
    """Text holding every trigram of `q` (each as a word of its own) but
    never `q` itself, `length` characters long: what a search for `q` finds
    through its trigram index on every such task, then rejects on each."""
    words = " ".join(q[i : i + 3] for i in range(len(q) - 2)) + " "
    text = (words * (length // len(words) + 1))[:length]
    assert q not in text
    return text


# The search attack of issue 25: every trigram of ATTACK_Q in each of a
# user's descriptions (MAX_TASKS_PER_USER of them), never ATTACK_Q itself.
ATTACK_Q = "abcdefgh"


def seed_attack(url: str, user_id: str, count: int = 10_000) -> None:
    """Give the user `count` tasks that every search for ATTACK_Q finds
    through the index and then rejects, straight into the database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tasks (user_id, title, description) "
            "SELECT %s, 'task ' || g, %s FROM generate_series(1, %s) AS g",
            (user_id, covering_text(ATTACK_Q), count),
        )
        conn.execute("ANALYZE tasks")


class DatabaseLock:
    """The test's own connection holding locks in one open transaction, so
    that requests touching what it locked wait inside PostgreSQL, as slow
    statements would; the interleaving is the test's, never the clock's.
    `statement`, when given, takes the lock on entry."""

    def __init__(self, url: str, statement: str | None = None) -> None:
        self.url = url
        self.statement = statement
        self.held = False

    async def __aenter__(self) -> DatabaseLock:
        self.conn = await asyncpg.connect(self.url)
        # pg_stat_activity is read once per transaction: watch from outside.
        self.observer = await asyncpg.connect(self.url)
        self.tx = self.conn.transaction()
        await self.tx.start()
        self.held = True
        if self.statement is not None:
            await self.hold(self.statement)
        return self

    async def hold(self, statement: str, *args: Any) -> None:
        await self.conn.execute(statement, *args)

    async def waiting(self) -> int:
        """Backends of this database waiting on a lock: the held requests."""
        return await self.observer.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )

    async def release(self) -> None:
        await self.tx.rollback()
        self.held = False

    async def __aexit__(self, *exc: object) -> None:
        if self.held:
            await self.tx.rollback()
        await self.conn.close()
        await self.observer.close()


AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_format = json",
    "SET auto_explain.log_buffers = on",
    "SET client_min_messages = log",
)


def listing_plan(conn, statement, analyze: bool = False) -> tuple[dict, list]:
    """(the plan PostgreSQL ran for the query inside list_tasks(), migration
    0021, when `statement` called it; the statement's rows). auto_explain
    reports it as the function runs it, with the function's own plan mode."""
    messages: list[str] = []
    conn.add_notice_handler(lambda diag: messages.append(diag.message_primary))
    for setting in (*AUTO_EXPLAIN, f"SET auto_explain.log_analyze = {'on' if analyze else 'off'}"):
        conn.execute(setting)
    rows = conn.execute(statement).fetchall()
    conn.execute("SET client_min_messages = notice")
    plans = [json.loads(m.partition("plan:\n")[2]) for m in messages if "plan:\n" in m]
    inside = [p for p in plans if p["Query Text"].lstrip().startswith("SELECT tasks.*")]
    assert len(inside) == 1, [p["Query Text"][:60] for p in plans]
    return inside[0], rows
