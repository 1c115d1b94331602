"""Where a request's CPU goes: the service beside bench/minimal.py, sampled.

    .venv/bin/python bench/profile.py [--scenario "get one"] [--seconds 8] [--top 30]

Starts the service and the minimal handler (over the service's lease) on
one seeded database (the minimal handler for get one only), and runs wrk on
each in turn while py-spy samples it
(1,000 a second). Each sample is charged to the function running then, and
scaled so that a process's samples add up to its measured CPU a request;
prints, for both, µs a request by package (the service's modules one by
one) and by function, largest difference first. Sampling slows a process
down a little; compare the two columns, not the totals with other runs.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import load
from ab import cpu_seconds, serving
from service_runner import BENCH_DATABASE_URL, analyze, free_port
from yardsticks import process

PY_SPY = Path(sys.executable).with_name("py-spy")


def sampled(pid: int, url: str, script: str, seconds: int) -> tuple[Path, float]:
    """py-spy's collapsed stacks of `pid` under wrk, and its CPU µs a request."""
    load.run_wrk(url, script, 1, 32)  # connections opened, statements prepared
    out = Path(tempfile.mkdtemp()) / "stacks.txt"
    command = [str(PY_SPY), "record", "-p", str(pid), "-r", "1000", "-d", str(seconds + 1)]
    spy = subprocess.Popen(
        [*command, "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = cpu_seconds(pid)
    result = load.run_wrk(url, script, seconds, 32)
    cpu = (cpu_seconds(pid) - before) / result["requests"] * 1e6
    spy.wait()
    return out, cpu


def charged(stacks: Path, cpu: float) -> tuple[dict[str, float], dict[str, float]]:
    """µs a request by package and by function, from the innermost frames."""
    by_package: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frame = stack.rsplit(";", 1)[-1].strip()
        name, _, where = frame.partition(" (")
        path = where.split(":", 1)[0]
        if name == "run_app":  # the event loop's own C code runs under it
            package = function = "the event loop (uvloop)"
        elif not path.endswith(".py") and not path.startswith("<"):
            package = function = "no Python frame (C code, the collector)"
        else:
            top = path.split("/", 1)[0]
            package = path if top == "service" else top
            function = f"{name} ({path})"
        by_package[package] += int(count)
        by_function[function] += int(count)
        total += int(count)
    scale = cpu / total
    return (
        {k: v * scale for k, v in by_package.items()},
        {k: v * scale for k, v in by_function.items()},
    )


def table(title: str, ours: dict[str, float], minimal: dict[str, float], top: int) -> None:
    rows = sorted(set(ours) | set(minimal), key=lambda k: minimal.get(k, 0) - ours.get(k, 0))
    rows = [k for k in rows if max(ours.get(k, 0.0), minimal.get(k, 0.0)) >= 0.05]
    print(f"\n| {title} | the service | minimal | difference |")
    print("|---|---|---|---|")
    print(f"| all | {sum(ours.values()):.1f} | {sum(minimal.values()):.1f} | |")
    for key in rows[:top]:
        a, b = ours.get(key, 0.0), minimal.get(key, 0.0)
        print(f"| `{key}` | {a:.1f} | {b:.1f} | {a - b:+.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="get one", choices=list(load.SCENARIOS))
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with ExitStack() as stack:
        keys_url, _ = stack.enter_context(load.better_auth_keys())
        bench = Path(__file__).resolve().parent
        pid, url = stack.enter_context(serving(str(bench.parent), BENCH_DATABASE_URL, keys_url))
        token, user_id, ids = load.seed(url)
        analyze(BENCH_DATABASE_URL)
        script = load.lua_common(token, ids) + load.SCENARIOS[args.scenario]
        ours = charged(*sampled(pid, url, script, args.seconds))
        minimal: tuple[dict[str, float], dict[str, float]] = ({}, {})
        if args.scenario != "get one":  # the minimal handler answers get one alone
            stack.close()
            return report(args, ours, minimal)
        port = free_port()
        command = [sys.executable, "minimal.py", "--database-url", BENCH_DATABASE_URL]
        command += ["--token", token, "--user-id", user_id, "--port", str(port)]
        minimal_url = f"http://127.0.0.1:{port}"
        minimal_pid = stack.enter_context(process(command, minimal_url + "/api/tasks/" + ids[0]))
        minimal = charged(*sampled(minimal_pid, minimal_url, script, args.seconds))
    report(args, ours, minimal)


def report(args: argparse.Namespace, ours: tuple, minimal: tuple) -> None:
    print(f"{args.scenario}: CPU µs a request, by where py-spy found it")
    table("package", ours[0], minimal[0], args.top)
    table("function", ours[1], minimal[1], args.top)


if __name__ == "__main__":
    main()
