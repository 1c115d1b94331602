"""Issue 27's yardsticks beside the service, one command, one run.

    .venv/bin/python bench/yardsticks.py [--rounds 3] [--seconds 5]

On one database with the same seeded tasks and the same token: the service
(one process), the minimal aiohttp handler of bench/minimal.py (get one
only) over the service's own lease (service/lease.py), over asyncpg's
`Pool` as the service configured it before that, and over a bare queue,
and the Node peer of bench/node_peer (Fastify + postgres.js + fast-jwt,
installed here with `npm ci`); create also spread over 32 accounts, one a
connection, as bench/load.py has it. wrk with 32 connections, every scenario in
turns across the peers, the order reversed each round; prints req/s, the
process's CPU a request and PostgreSQL's, medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import load
from ab import cpu_seconds, postgres_cpu_seconds, serving
from service_runner import BENCH_DATABASE_URL, analyze, free_port, wait_until

BENCH = Path(__file__).resolve().parent
NODE_PEER = BENCH / "node_peer"
SECRET = "clNsbY8h43D08AV8JaOjLVkQCPNFOmV5FEtdSv0lM3YpnMGm"  # noqa: S105 - ab.serving's, a bench's own
SCENARIOS = ["get one", "list 20", "create", "patch", load.MANY_ACCOUNTS]


def listening(url: str) -> bool:
    """Any HTTP answer (a 401 or a 404 too): the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our local peer
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@contextmanager
def process(command: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run `command` until the block ends, once `url` answers; yields its pid."""
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=BENCH
    )
    try:
        wait_until(lambda: listening(url), f"{command[0]} to answer", 30)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    subprocess.run(["npm", "ci", "--silent"], cwd=NODE_PEER, check=True)
    peers: dict[str, tuple[int, str, list[str]]] = {}
    with ExitStack() as stack:
        keys_url, _ = stack.enter_context(load.better_auth_keys())
        pid, url = stack.enter_context(serving(str(BENCH.parent), BENCH_DATABASE_URL, keys_url))
        token, user_id, ids = load.seed(url)
        analyze(BENCH_DATABASE_URL)
        peers["service"] = (pid, url, SCENARIOS)
        for lease in ("lease", "pool", "queue"):
            port = free_port()
            command = [sys.executable, "minimal.py", "--database-url", BENCH_DATABASE_URL]
            command += ["--token", token, "--user-id", user_id, "--port", str(port)]
            minimal_url = f"http://127.0.0.1:{port}"
            pid = stack.enter_context(
                process([*command, "--lease", lease], minimal_url + "/api/tasks/" + ids[0])
            )
            peers[f"minimal ({lease})"] = (pid, minimal_url, ["get one"])
        port = free_port()
        node_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": BENCH_DATABASE_URL, "PORT": str(port)}
        env["AUTH_SECRET"] = SECRET
        pid = stack.enter_context(process(["node", "node_peer/server.js"], node_url, env))
        peers["Node peer"] = (pid, node_url, SCENARIOS)

        script = {
            name: load.lua_common(token, ids) + load.SCENARIOS[name]
            for name in SCENARIOS
            if name in load.SCENARIOS
        }
        # Each of wrk's connections creating for an account of its own, as real users do.
        script[load.MANY_ACCOUNTS] = load.many_accounts_create(url, 32)
        results: dict = {(p, s): [] for p, (_, _, ss) in peers.items() for s in ss}
        for turn in range(args.rounds):
            order = list(peers) if turn % 2 == 0 else list(reversed(peers))
            for scenario in SCENARIOS:
                for peer in order:
                    pid, peer_url, scenarios = peers[peer]
                    if scenario not in scenarios:
                        continue
                    before, pg_before = cpu_seconds(pid), postgres_cpu_seconds()
                    out = load.run_wrk(peer_url, script[scenario], args.seconds, 32)
                    if out["errors"]:
                        raise RuntimeError(f"{peer} {scenario}: {out['errors']} errors")
                    cpu = (cpu_seconds(pid) - before) / out["requests"] * 1e6
                    pg = (postgres_cpu_seconds() - pg_before) / out["requests"] * 1e6
                    results[peer, scenario].append((out["rps"], cpu, pg))
            print(f"round {turn + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    print("| scenario | peer | req/s | process CPU µs a request | PostgreSQL CPU µs a request |")
    print("|---|---|---|---|---|")
    for scenario in SCENARIOS:
        for peer in peers:
            runs = results.get((peer, scenario))
            if runs:
                rps, cpu, pg = (statistics.median(r[i] for r in runs) for i in range(3))
                print(f"| {scenario} | {peer} | {rps:.0f} | {cpu:.0f} | {pg:.0f} |")


if __name__ == "__main__":
    main()
