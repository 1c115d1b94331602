"""Load benchmark: wrk against a running service, beside the raw asyncpg
ceiling of the same get-one SQL at the same concurrency.

    .venv/bin/python bench/load.py                 # start a service, run everything
    .venv/bin/python bench/load.py --workers 2     # the service with 2 workers
    .venv/bin/python bench/load.py --url URL       # a service you started
    .venv/bin/python bench/load.py --pooler        # then again through PgBouncer

Scenarios (32 connections, 2 wrk threads, 10 s each by default): get one
task, list 20, create, patch, a mix (70% get, 15% list, 10% patch, 5%
create), list 20 by due date with a tag filter (over 300 older tasks
with due dates, a third tagged "work"), and two selective filters that
match nothing (overdue: every due date is ahead; due before 2000), all
with the service's own token;
then get one again with a Better Auth token (EdDSA, its key served by a
local key server, as the frontend's Better Auth publishes it). Prints a
table and writes it to bench/results/load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from service_runner import (
    BENCH_DATABASE_URL,
    REPO,
    analyze,
    arguments,
    running_pgbouncer,
    running_service,
)

BETTER_AUTH = "get one (Better Auth token)"
# Creates spread over as many accounts as wrk has connections: each account's
# quota counter row is then its own, as with real users.
MANY_ACCOUNTS = "create (32 accounts)"
RESULTS = Path(__file__).resolve().parent / "results" / "load.md"
SEED_TASKS = 1000

LUA_COMMON = """
local token = "{token}"
local ids = {{ {ids} }}
local counter = 0
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
local function pick()
  counter = counter + 1
  return ids[(counter * 7919) % #ids + 1]
end
local function get_one() return wrk.format("GET", "/api/tasks/" .. pick()) end
local function list20() return wrk.format("GET", "/api/tasks?limit=20") end
local function list20_due_tagged()
  return wrk.format("GET", "/api/tasks?limit=20&sort=due_at&tag=work")
end
local function list20_overdue() return wrk.format("GET", "/api/tasks?limit=20&overdue=true") end
local function list20_due_before_2000()
  return wrk.format("GET", "/api/tasks?limit=20&due_before=2000-01-01T00:00:00Z")
end
local function create()
  local body = '{{"title": "bench task", "description": "made by wrk"}}'
  return wrk.format("POST", "/api/tasks", nil, body)
end
local function patch()
  local done = (counter % 2 == 0) and "true" or "false"
  return wrk.format("PATCH", "/api/tasks/" .. pick(), nil, '{{"completed": ' .. done .. '}}')
end
"""

SCENARIOS = {
    "get one": "request = get_one",
    "list 20": "request = list20",
    "create": "request = create",
    "patch": "request = patch",
    "mix": """
request = function()
  local r = counter % 20
  if r < 14 then return get_one()
  elseif r < 17 then counter = counter + 1; return list20()
  elseif r < 19 then return patch()
  else counter = counter + 1; return create() end
end
""",
    "list 20 by due date with a tag filter": "request = list20_due_tagged",
    "list 20 overdue (none is)": "request = list20_overdue",
    "list 20 due before 2000 (none is)": "request = list20_due_before_2000",
}

# The same routes on FastAPI + SQLModel, as the issue records them (req/s).
FASTAPI_BASELINE = {"get one": 420, "list 20": 280, "create": 320, "patch": 360}


def http(url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read())


def seed(url: str) -> tuple[str, str, list[str]]:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    session = http(
        url + "/api/auth/signup", {"email": email, "password": "bench-password", "name": "Bench"}
    )
    token, user_id = session["access_token"], session["user"]["id"]
    seed_organised(url, token)  # first: older than the others, so "list 20" shows none
    return token, user_id, seed_tasks(url, token)


ORGANISED_TASKS = 300


def seed_organised(url: str, token: str) -> None:
    """Tasks with due dates, priorities and tags, for the tag scenario only:
    the other scenarios' ids and pages are the plain seed tasks, as before.
    A service from before these fields (bench/ab.py's "before") refuses
    them with a 422: it gets none, and that scenario means nothing there."""
    for i in range(ORGANISED_TASKS):
        task = {
            "title": f"organised {i}",
            "due_at": f"2027-{i % 12 + 1:02d}-{i % 28 + 1:02d}T09:00:00Z",
            "priority": ("none", "low", "medium", "high")[i % 4],
            "tags": ["work" if i % 3 == 0 else "home", f"project {i % 10}"],
        }
        try:
            http(url + "/api/tasks", task, token)
        except urllib.error.HTTPError as exc:
            if exc.code == 422 and i == 0:
                return
            raise


def seed_tasks(url: str, token: str) -> list[str]:
    return [
        http(url + "/api/tasks", {"title": f"seed {i}", "description": "x" * (i % 50)}, token)["id"]
        for i in range(SEED_TASKS)
    ]


@contextmanager
def better_auth_keys() -> Iterator[tuple[str, Callable[[], str]]]:
    """A key server publishing one Ed25519 key at /api/auth/jwks, as Better
    Auth's JWT plugin does; (its URL, a function making a token)."""
    key, kid = Ed25519PrivateKey.generate(), uuid.uuid4().hex
    jwk = jwt.get_algorithm_by_name("EdDSA").to_jwk(key.public_key(), as_dict=True)
    body = json.dumps({"keys": [{**jwk, "kid": kid, "alg": "EdDSA"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subject = uuid.uuid4().hex

    def token() -> str:
        now = int(time.time())
        claims = {"sub": subject, "iss": url, "aud": url, "iat": now, "exp": now + 3600}
        claims |= {"email": "bench@example.com", "name": "Bench"}
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})

    try:
        yield url, token
    finally:
        server.shutdown()
        server.server_close()


def parse_wrk(output: str) -> dict:
    def latency_ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    p50 = latency_ms(re.search(r"\s50%\s+(\S+)", output)[1])
    p99 = latency_ms(re.search(r"\s99%\s+(\S+)", output)[1])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non2xx[1]) if non2xx else 0
    if socket:
        errors += sum(int(x) for x in socket.groups())
    requests = int(re.search(r"(\d+) requests in", output)[1])
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors, "requests": requests}


def run_wrk(url: str, script: str, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", path, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(path)
    return parse_wrk(out)


def run(url: str, script: str, seconds: int, connections: int, name: str) -> dict:
    result = run_wrk(url, script, seconds, connections)
    print(
        f"{name:8} {result['rps']:9.0f} req/s  p50 {result['p50']:.2f} ms  "
        f"p99 {result['p99']:.2f} ms  errors {result['errors']}",
        file=sys.stderr,
    )
    return result


async def raw_ceiling(
    database_url: str, sql: str, user_id: str, ids: list[str], seconds: float, concurrency: int
) -> dict:
    """The same get-one statement straight through asyncpg: no HTTP, no JSON."""
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency)
    uids = [uuid.UUID(i) for i in ids]
    owner = uuid.UUID(user_id)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        n = offset
        async with pool.acquire() as conn:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                row = await conn.fetchrow(sql, uids[(n * 7919) % len(uids)], owner)
                latencies.append(time.perf_counter() - start)
                assert row is not None
                n += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - began
    await pool.close()
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": 0,
        "requests": len(latencies),
    }


def measure(
    url: str, seconds: int, connections: int, better_auth_token: str | None = None
) -> tuple[dict, dict]:
    token, user_id, ids = seed(url)
    analyze(BENCH_DATABASE_URL)
    common = lua_common(token, ids)
    results = {}
    for name, body in SCENARIOS.items():
        results[name] = run(url, common + body, seconds, connections, name)
    if better_auth_token:  # seeded after the others, which run as they always did
        ba_common = lua_common(better_auth_token, seed_tasks(url, better_auth_token))
        results[BETTER_AUTH] = run(
            url, ba_common + SCENARIOS["get one"], seconds, connections, BETTER_AUTH
        )
    sql = (REPO / "sql" / "queries" / "tasks" / "get_task.sql").read_text()
    raw = asyncio.run(raw_ceiling(BENCH_DATABASE_URL, sql, user_id, ids, seconds, connections))
    return results, raw


def lua_common(token: str, ids: list[str]) -> str:
    return LUA_COMMON.format(token=token, ids=", ".join(f'"{i}"' for i in ids))


def scripts(url: str, better_auth_token: str) -> dict[str, str]:
    """Every scenario's wrk script, seeded up front (bench/ab.py)."""
    token, _, ids = seed(url)
    common = lua_common(token, ids)
    ba_common = lua_common(better_auth_token, seed_tasks(url, better_auth_token))
    return {
        **{name: common + body for name, body in SCENARIOS.items()},
        BETTER_AUTH: ba_common + SCENARIOS["get one"],
        MANY_ACCOUNTS: many_accounts_create(url, 32),
    }


def many_accounts_create(url: str, accounts: int) -> str:
    """A wrk script creating tasks for `accounts` new accounts in turn."""
    tokens = [
        http(
            url + "/api/auth/signup",
            {
                "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                "password": "bench-password",
                "name": "Bench",
            },
        )["access_token"]
        for _ in range(accounts)
    ]
    return """
local tokens = {{ {tokens} }}
local counter = 0
local body = '{{"title": "bench task", "description": "made by wrk"}}'
request = function()
  counter = counter + 1
  local headers = {{
    ["Authorization"] = "Bearer " .. tokens[counter % #tokens + 1],
    ["Content-Type"] = "application/json",
  }}
  return wrk.format("POST", "/api/tasks", headers, body)
end
""".format(tokens=", ".join(f'"{t}"' for t in tokens))


def report(results: dict, raw: dict, workers: int, seconds: int, connections: int) -> str:
    lines = [
        f"# Load benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`bench/load.py --workers {workers}`: wrk, {connections} connections, 2 threads, "
        f"{seconds} s a scenario, on the same {os.cpu_count()}-core machine as the service "
        "and PostgreSQL; one user with 1,000 tasks; access logging on (INFO, JSON).",
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | vs FastAPI+SQLModel |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        base = FASTAPI_BASELINE.get(name)
        ratio = f"{r['rps'] / base:.1f}x ({base} req/s)" if base else "-"
        lines.append(
            f"| {name} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['errors']} | {ratio} |"
        )
    lines.append(
        f"| raw asyncpg get-one (ceiling) | {raw['rps']:.0f} | {raw['p50']:.2f} "
        f"| {raw['p99']:.2f} | 0 | - |"
    )
    share = results["get one"]["rps"] / raw["rps"]
    lines += ["", f"get one reaches **{share:.2f}** of the raw asyncpg ceiling.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--pooler",
        action="store_true",
        help="also run everything through PgBouncer in transaction mode (DATABASE_POOLER)",
    )
    args = parser.parse_args()
    if args.url:
        results, raw = measure(args.url, args.seconds, args.connections)
        text = report(results, raw, args.workers, args.seconds, args.connections)
    else:
        text = report(
            *run_service(args, BENCH_DATABASE_URL), args.workers, args.seconds, args.connections
        )
        if args.pooler:
            with running_pgbouncer(BENCH_DATABASE_URL) as pooled_url:
                pooled = run_service(args, pooled_url, {"DATABASE_POOLER": "transaction"})
            text += (
                "\n## Through PgBouncer (transaction mode, DATABASE_POOLER=transaction)\n\n"
                "Debian's pgbouncer with its defaults in front of the same PostgreSQL; the "
                "ceiling row is still asyncpg straight to PostgreSQL.\n\n"
            )
            text += "\n".join(
                report(*pooled, args.workers, args.seconds, args.connections).splitlines()[4:]
            )
    print(text)
    name = "load.md" if args.workers == 1 else f"load-{args.workers}-workers.md"
    if args.pooler:
        name = name.replace(".md", "-pooler.md")
    RESULTS.with_name(name).write_text(text)


def run_service(
    args: argparse.Namespace, database_url: str, extra: dict[str, str] | None = None
) -> tuple[dict, dict]:
    env = {"BCRYPT_ROUNDS": "10", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", **(extra or {})}
    with (
        better_auth_keys() as (keys_url, better_auth_token),
        running_service(
            {**env, "BETTER_AUTH_URL": keys_url, "DATABASE_URL": database_url},
            workers=args.workers,
            log_path=str(RESULTS.with_name("load-service.log")),
        ) as url,
    ):
        return measure(url, args.seconds, args.connections, better_auth_token())


if __name__ == "__main__":
    main()
