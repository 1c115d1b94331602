"""`serve --workers N` (N > 1): gunicorn's arbiter runs aiohttp's uvloop workers
on the command's socket and application; one that cannot boot stops them all."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.worker import GunicornUVLoopWebWorker
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer

from service.logs import first_line

log = logging.getLogger("service")

# After SIGTERM a worker drains for SHUTDOWN_TIMEOUT, then closes its pool;
# the arbiter kills what is still running this much later.
CLEANUP_SECONDS = 2
# A worker whose event loop has not ticked for this long is killed and replaced.
WORKER_TIMEOUT_SECONDS = 30

# SIGTERM and SIGINT stop the command (and the arbiter); it sends a worker QUIT after SIGINT.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


def serve(app: web.Application, sock: socket.socket, workers: int, shutdown_timeout: float) -> int:
    """Serve `app` from `workers` processes on the listening `sock` until SIGTERM or
    SIGINT (blocked by the caller until gunicorn's handlers are in place): 0 after
    a graceful stop, 1 when a worker could not boot or the arbiter failed."""
    from service.metrics import mark_worker_dead

    async def runner() -> web.AppRunner:  # as with one process; the access line is ours
        return web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)

    master = os.getpid()
    options = {
        "bind": [f"fd://{sock.detach()}"],
        "workers": workers,
        "worker_class": _Worker,
        "timeout": WORKER_TIMEOUT_SECONDS,
        "graceful_timeout": math.ceil(shutdown_timeout + CLEANUP_SECONDS),
        "logger_class": _Log,
        "proc_name": "todo-api",
        "control_socket_disable": True,  # else one in $HOME, shared by the user's gunicorns
        # gunicorn's handlers are installed: a stop during start-up is handled gracefully.
        "when_ready": lambda _arbiter: signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS),
        "child_exit": lambda _arbiter, worker: mark_worker_dead(worker.pid),
    }
    try:
        _Arbiter(_Server(runner, options)).run()
        code: Any = 0
    except RuntimeError as exc:  # as BaseApplication.run, in one line
        log.error("cannot start the workers: %s", describe(exc))
        code = 1
    except SystemExit as exc:
        code = exc.code
    if os.getpid() != master:
        # A worker leaving (forked inside run()) must not return into the command's clean-up.
        logging.shutdown()
        os._exit(code if isinstance(code, int) else 1)
    return 0 if code in (0, None) else 1


class _Server(BaseApplication):
    """gunicorn configured from a dict, never the command line, a file or GUNICORN_CMD_ARGS."""

    def __init__(
        self, runner: Callable[[], Awaitable[web.AppRunner]], options: dict[str, Any]
    ) -> None:
        self._runner = runner
        self._options = options
        super().__init__(prog="todo-api")

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[[], Awaitable[web.AppRunner]]:
        return self._runner  # the worker serves it on gunicorn's socket


class _Arbiter(Arbiter):
    """Stop signals blocked across the fork (else one before the worker's handlers
    is lost); once stopping, a worker failing to boot is only reaped, not halted again."""

    stopping = False

    def spawn_worker(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super().spawn_worker()
        finally:
            if os.getpid() == self.pid:  # the arbiter; a worker never returns
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def stop(self, graceful: bool = True) -> None:
        self.stopping = True
        super().stop(graceful)

    def reap_workers(self) -> None:
        try:
            super().reap_workers()
        except HaltServer:
            if not self.stopping:
                raise


class _Worker(GunicornUVLoopWebWorker):
    def run(self) -> None:
        # uvloop hands signals to the handlers only once the loop runs.
        self.loop.call_soon(signal.pthread_sigmask, signal.SIG_UNBLOCK, STOP_SIGNALS)
        try:
            super().run()
        except Exception as exc:
            if self.booted:
                raise
            # One line, not a traceback; WORKER_BOOT_ERROR stops the arbiter.
            log.error("worker (pid %d) cannot start: %s", os.getpid(), describe(exc))
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def handle_exit(self, sig: int, frame: object) -> None:
        # SIGTERM: start draining now, not at the worker's next 1-second tick.
        super().handle_exit(sig, frame)
        self._notify_waiter_done()


class _Log(glogging.Logger):
    """gunicorn's messages through our logging, from WARNING up (DEBUG: all); no access log."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg
        self._access_log_enabled = False
        self.access_log.disabled = True
        self.error_log.propagate = True
        ours = logging.getLogger().getEffectiveLevel()
        self.loglevel = ours if ours <= logging.DEBUG else max(ours, logging.WARNING)
        self.error_log.setLevel(self.loglevel)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"
