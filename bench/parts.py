"""Issue 27's per-request parts: CPU a request with and without each one.

    .venv/bin/python bench/parts.py [--rounds 3] [--seconds 5] [--redis]

One database, one account's seeded tasks, one token. The service runs as it
ships, once per part with that part switched off (by replacing its function
in the process, as below; nothing in service/ knows of this bench), once
with every part off, and beside them bench/minimal.py over the `Pool`.
Each takes get one and list 20 from wrk (32 connections) in turns, the
order reversed each round; prints the medians of the service process's CPU
a request, and each part's cost as full minus without. `--redis` counts the
rate limits in the local Redis (RATE_LIMIT_STORAGE) instead of memory://.

    .venv/bin/python bench/parts.py --serve-without access,metrics -- serve --port 8100
runs the service with those parts off (what the bench starts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
SCENARIOS = ["get one", "list 20"]
MINIMAL = "minimal handler (the service's lease), get one only"


def _nothing(*_args: object, **_kwargs: object) -> None:
    return None


async def _nothing_async(*_args: object, **_kwargs: object) -> None:
    return None


def _switch_off(part: str) -> None:
    """Replace the part's function by one that does nothing (or the least)."""
    from service import db, internals, metrics, middlewares, ratelimit
    from service.auth import tokens
    from service.tasks import schemas

    if part == "access":  # the access line
        middlewares.access_line = _nothing
    elif part == "metrics":  # the request counter and latency histogram
        metrics.observe = _nothing
    elif part == "limits":  # the per-user rate limit and DB_MAX_PER_USER's share
        ratelimit.RateLimits.count_request = _nothing_async
        db.UserShares.try_take = lambda _self, _user: True
        db.UserShares.give_back = _nothing
    elif part == "session":  # the session check's clock readings (its look is every 0.5 s)
        tokens.TokenService.cached = lambda self, token: self._verified.get(token)
    elif part == "cors":  # CORS, Vary, nosniff, Cache-Control
        middlewares.answer_headers = _nothing
    elif part == "head":  # the Host check and the head deadline's handler class
        middlewares.refuse_bad_head = _nothing
        plain = internals.web_protocol.RequestHandler
        internals._HeadDeadline.data_received = plain.data_received
        internals._HeadDeadline.connection_made = plain.connection_made
    elif part == "serialise":  # the task's dict, as minimal.py builds it
        schemas.task_json = lambda row: {**row}
    else:
        raise SystemExit(f"no part {part!r}")


PARTS = ["access", "metrics", "limits", "session", "cors", "head", "serialise"]


def serve_without(parts: list[str], argv: list[str]) -> None:
    from service.__main__ import main

    for part in parts:
        _switch_off(part)
    raise SystemExit(main(argv))


def measure(args: argparse.Namespace) -> None:
    import load
    from ab import cpu_seconds, serving
    from service_runner import BENCH_DATABASE_URL, BENCH_LIMITS, analyze, free_port
    from yardsticks import process

    with ExitStack() as stack:
        keys_url, _ = stack.enter_context(load.better_auth_keys())
        pid, url = stack.enter_context(serving(str(BENCH.parent), BENCH_DATABASE_URL, keys_url))
        token, user_id, ids = load.seed(url)
        analyze(BENCH_DATABASE_URL)
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": BENCH_DATABASE_URL,
            "BETTER_AUTH_SECRET": "clNsbY8h43D08AV8JaOjLVkQCPNFOmV5FEtdSv0lM3YpnMGm",
            "BETTER_AUTH_URL": keys_url,
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            **BENCH_LIMITS,
        }
        if args.redis:
            env["RATE_LIMIT_STORAGE"] = "redis://127.0.0.1:6379/15"
        variants = {"": "full", **{p: p for p in PARTS}, ",".join(PARTS): "every part"}
        commands: dict[str, tuple[list[str], str]] = {}
        for parts, name in variants.items():
            command = [sys.executable, __file__, "--serve-without", parts, "--", "serve"]
            label = "the service as it ships" if not parts else f"without {name}"
            commands[label] = (command, "/health")
        command = [sys.executable, "minimal.py", "--database-url", BENCH_DATABASE_URL]
        command += ["--token", token, "--user-id", user_id]
        commands[MINIMAL] = (command, "/api/tasks/" + ids[0])
        del pid  # the seeding service: idle from here on

        script = {name: load.lua_common(token, ids) + load.SCENARIOS[name] for name in SCENARIOS}
        results: dict = {}
        for turn in range(args.rounds):
            order = list(commands) if turn % 2 == 0 else list(reversed(commands))
            for peer in order:
                # One at a time: every variant's pool at once would pass max_connections.
                command, probe = commands[peer]
                port = free_port()
                peer_url = f"http://127.0.0.1:{port}"
                if peer == MINIMAL:
                    command = [*command, "--port", str(port)]
                else:
                    command = [*command, "--host", "127.0.0.1", "--port", str(port)]
                with process(command, peer_url + probe, env) as peer_pid:
                    load.run_wrk(peer_url, script["get one"], 1, 32)  # connections, statements
                    for scenario in SCENARIOS[:1] if peer == MINIMAL else SCENARIOS:
                        before = cpu_seconds(peer_pid)
                        out = load.run_wrk(peer_url, script[scenario], args.seconds, 32)
                        if out["errors"]:
                            raise RuntimeError(f"{peer} {scenario}: {out['errors']} errors")
                        cpu = (cpu_seconds(peer_pid) - before) / out["requests"] * 1e6
                        results.setdefault((peer, scenario), []).append(cpu)
            print(f"round {turn + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    full = "the service as it ships"
    print("| variant | " + " | ".join(f"{s}: CPU µs a request (cost)" for s in SCENARIOS) + " |")
    print("|---|" + "---|" * len(SCENARIOS))
    for peer in commands:
        cells = []
        for scenario in SCENARIOS:
            runs = results.get((peer, scenario))
            if not runs:
                cells.append("")
                continue
            cpu = statistics.median(runs)
            base = statistics.median(results[full, scenario])
            cells.append(f"{cpu:.0f}" if peer == full else f"{cpu:.0f} ({base - cpu:+.0f})")
        print(f"| {peer} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--redis", action="store_true", help="rate limits in the local Redis")
    parser.add_argument("--serve-without", metavar="PARTS", help="run the service, parts off")
    parser.add_argument("argv", nargs="*", help="after --: the service's own arguments")
    args = parser.parse_args()
    if args.serve_without is not None:
        serve_without([p for p in args.serve_without.split(",") if p], args.argv)
    measure(args)


if __name__ == "__main__":
    main()
