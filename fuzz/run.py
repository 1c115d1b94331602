"""Contract fuzzing: start the service on its own throwaway database, sign
up a real user, and run schemathesis with every check against it.

    .venv/bin/python fuzz/run.py [--examples N] [--seed S]

Exits with schemathesis's status. Used by `make test` (and so by CI)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
# Run as `python fuzz/run.py`: only fuzz/ is on the path, not the repo.
sys.path.insert(0, str(REPO))

from tests.launcher import UNREACHED_RATE_LIMITS, launched, todo_api  # noqa: E402

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - our own local service
        url, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()

    name = f"todo_fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": "fuzz-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        # Schemathesis signs up and in far more often than a person: limits it never reaches.
        **UNREACHED_RATE_LIMITS,
    }
    try:
        migrated = todo_api("migrate", env=env)
        if migrated.returncode != 0:
            print(migrated.stderr, file=sys.stderr)
            return migrated.returncode
        with launched(env) as service:
            code = fuzz(service.url, env, args.seed, args.examples)
            if code != 0:  # what the service logged explains a failed check
                print(service.output(), file=sys.stderr)
            return code
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# They end the caller's session or account: fuzzed after the rest, each
# group with a user of its own, so every other operation runs with a live
# token. Sign-out comes last: after its first 204 its token is a 401.
ENDING = (("changePassword", "deleteMe"), ("signout",))


# An event stream never ends by itself, so a fuzz case would wait out its
# timeout; tests/events/ covers it (its 400 for a forged Last-Event-ID too).
STREAMS = ("streamEvents", "streamEventsByUser")


def fuzz(base: str, env: dict[str, str], seed: int, examples: int) -> int:
    """Sign up a user, then run schemathesis against `base`; its exit status."""
    session = signup(base, "fuzz@example.com")
    st_env = {**env, "TODO_FUZZ_USER_ID": session["user"]["id"]}
    left_out = [op for group in ENDING for op in group] + list(STREAMS)
    excluded = [arg for op in left_out for arg in ("--exclude-operation-id", op)]
    code = schemathesis(base, session["access_token"], st_env, seed, examples, excluded)
    for n, group in enumerate(ENDING):
        if code != 0:
            break
        user = signup(base, f"fuzz-ending-{n}@example.com")
        included = [arg for op in group for arg in ("--include-operation-id", op)]
        # No stateful phase: these operations link to none of their own.
        included += ["--phases", "examples,coverage,fuzzing"]
        code = schemathesis(base, user["access_token"], st_env, seed, examples, included)
    return code


def signup(base: str, email: str) -> dict:
    return call(
        base + "/api/auth/signup", {"email": email, "password": "fuzz-password", "name": "Fuzz"}
    )


def schemathesis(
    base: str, token: str, env: dict[str, str], seed: int, examples: int, only: list[str]
) -> int:
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(REPO / "fuzz" / "schemathesis.toml"),
        "run",
        f"{base}/openapi.json",
        "--url",
        base,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--seed",
        str(seed),
        "--max-examples",
        str(examples),
        "--no-color",
        *only,
    ]
    hooks = {"SCHEMATHESIS_HOOKS": "fuzz.hooks", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, env={**env, **hooks}, cwd=REPO, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
