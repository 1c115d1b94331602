"""The one way the tests, bench/ and fuzz/ run `todo-api` as a real process.

Standard library only, so the scripts import it without pytest::

    with launched(env, "--workers", "2") as service:   # ready: /health is 200
        urllib.request.urlopen(service.url + "/ready")
        assert service.stop() == 0                      # SIGTERM, bounded wait
    result = todo_api("migrate", env=env)               # a command run to its end

`env` is the process's whole environment: pass ``{**os.environ, ...}`` to
inherit. Whatever the block does, the service is stopped when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
# The suite, fuzz/ and bench/ sign up and in from 127.0.0.1 far more than a
# person would: every rate limit stays on (its code runs) but out of reach.
# tests/test_ratelimit.py sets small ones of its own.
UNREACHED_RATE_LIMITS = {
    "RATE_LIMIT_SIGNIN_FAILURES": "100000000/minute",
    "RATE_LIMIT_AUTH_PER_IP": "100000000/minute",
    "RATE_LIMIT_AUTH_PER_IPV6_48": "100000000/minute",
    "RATE_LIMIT_PER_USER": "100000000/minute",
}


def free_port(host: str = HOST) -> int:
    """A local port nothing listens on (so connecting to it is refused)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(ready: Callable[[], bool], failure: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``ready`` every 50 ms; raise TimeoutError(failure) after ``timeout`` s.
    Only for conditions nothing notifies us of (a port opening, a row in
    pg_stat_activity, a process exiting elsewhere)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{failure} within {timeout:.0f} s")
        time.sleep(POLL_INTERVAL)


async def wait_until_async(
    ready: Callable[[], Awaitable[bool]], failure: str, within: float = READY_TIMEOUT
) -> None:
    """wait_until for a condition checked with a coroutine."""
    deadline = asyncio.timeout(within)
    try:
        async with deadline:
            while not await ready():  # noqa: ASYNC110 - no event announces these conditions
                await asyncio.sleep(POLL_INTERVAL)
    except TimeoutError:
        if not deadline.expired():  # raised by `ready` itself
            raise
        raise TimeoutError(f"{failure} within {within:.0f} s") from None


def todo_api(
    *args: str, env: Mapping[str, str], timeout: float = 120, cwd: Path | str = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    """Run `todo-api ARGS` to its end; its output is captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_running(*words: str) -> list[int]:
    """Processes (of any parent) whose command line holds every word."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:  # gone meanwhile
            continue
        if all(word in args for word in words):
            found.append(int(entry))
    return found


class HttpAnswer(NamedTuple):
    status: int
    body: bytes


def http_get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 5) -> HttpAnswer:
    """GET `url`; an error status is an answer too. OSError when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - local
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return HttpAnswer(resp.status, resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpAnswer(exc.code, exc.read())


class Service:
    """A running `todo-api serve`: ``process``, ``port``, ``url`` and what it
    has logged so far (``output()``)."""

    def __init__(self, process: subprocess.Popen[str], port: int, log: IO[str]) -> None:
        self.process = process
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._log = log
        self._signalled = False

    def output(self) -> str:
        self._log.flush()
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Return once /health answers 200; fail at once if the process exits."""

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"todo-api serve exited with {self.process.returncode}:\n"
                    + self.output()[-4000:]
                )
            try:
                return http_get(self.url + "/health", timeout=1).status == 200
            except OSError:  # not listening yet
                return False

        try:
            # Nothing tells us when the port starts answering: poll it.
            wait_until(answers, "todo-api serve did not answer /health", timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}:\n{self.output()[-4000:]}") from None

    def send_signal(self, sig: int) -> None:
        """Signal it; `stop()` then waits without signalling again (a second
        SIGTERM cuts the drain short)."""
        self._signalled = True
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig` (unless it was signalled already or has exited) and
        return its exit status; killed, and TimeoutError, when it has not
        exited within `timeout` s."""
        if not self._signalled and self.process.poll() is None:
            self.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise TimeoutError(f"todo-api serve did not stop within {timeout:.0f} s") from None


@contextmanager
def launched(
    env: Mapping[str, str],
    *args: str,
    log_path: Path | str | None = None,
    ready: bool = True,
    ready_timeout: float = READY_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> Iterator[Service]:
    """`todo-api serve --host 127.0.0.1 --port <free> ARGS` with `env`, until
    the block ends. Yields once /health answers (with ``ready=False``, at
    once). Its output goes to `log_path` (default: a temporary file). At the
    end a service still running is stopped with SIGTERM; one that will not
    stop within `stop_timeout` is killed (and, unless the block failed
    already, that is a TimeoutError)."""
    port = free_port()
    with open(log_path, "w") if log_path else tempfile.NamedTemporaryFile("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", HOST, "--port", str(port), *args],
            env=dict(env),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        service = Service(process, port, log)
        try:
            if ready:
                service.wait_ready(ready_timeout)
            yield service
        except BaseException:
            with contextlib.suppress(TimeoutError):  # the block's own error is the one to see
                service.stop(timeout=stop_timeout)
            raise
        else:
            service.stop(timeout=stop_timeout)
