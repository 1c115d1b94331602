"""The `todo-api` command (also `python -m service`): serve | migrate | rollback."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence

from service import __version__, logs
from service.settings import Settings, SettingsError

log = logging.getLogger("service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description="The todo-api service.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=_positive, default=1, help="processes sharing the port (default 1)"
    )

    sub.add_parser("migrate", help="apply every pending migration, under yoyo's lock")

    rollback = sub.add_parser("rollback", help="roll back the newest migrations")
    rollback.add_argument(
        "--count", type=_positive, default=1, help="how many migrations (default 1)"
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("must be at most 65535")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"todo-api: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    settings.warn_filled_in(log)

    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "rollback":
        return _rollback(settings, args.count)
    return _serve(settings, args.host, args.port, args.workers)


def _prepare_database(settings: Settings) -> None:
    from service.migrations import ensure_database

    if settings.is_production:
        return
    try:
        ensure_database(settings.database_url)
    except Exception as exc:  # a convenience only; migrate reports the real error
        log.warning("could not check or create the database: %s", type(exc).__name__)


def _migrate(settings: Settings) -> int:
    from service.migrations import migrate

    _prepare_database(settings)
    try:
        applied = migrate(settings.database_url, settings.migrations_dir)
    except Exception as exc:
        log.error("migrate failed: %s: %s", type(exc).__name__, _first_line(exc))
        return 1
    if applied:
        log.info("applied %d migration(s): %s", len(applied), ", ".join(applied))
    else:
        log.info("schema is up to date; nothing to apply")
    return 0


def _rollback(settings: Settings, count: int) -> int:
    from service.migrations import rollback

    try:
        rolled = rollback(settings.database_url, settings.migrations_dir, count)
    except Exception as exc:
        log.error("rollback failed: %s: %s", type(exc).__name__, _first_line(exc))
        return 1
    if rolled:
        log.info("rolled back %d migration(s): %s", len(rolled), ", ".join(rolled))
    else:
        log.info("nothing to roll back")
    return 0


def _first_line(exc: BaseException) -> str:
    # Driver messages can be long; never include the connection URL.
    return (str(exc).splitlines() or [""])[0][:300]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _run_worker(settings: Settings, sock: socket.socket) -> None:
    """One process serving on the shared, already bound socket until SIGTERM
    or SIGINT; then it drains in-flight requests and returns."""
    from aiohttp import web

    from service.app import create_app

    loop = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is in requirements
        pass
    app = create_app(settings)
    app.on_startup.append(_unblock_stop_signals)
    web.run_app(
        app,
        sock=sock,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
        loop=loop,
    )


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


async def _unblock_stop_signals(_app: object) -> None:
    # run_app's handlers are installed by now: a SIGTERM that arrived while
    # the worker was starting is delivered here and drains as usual.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    try:
        sock = _bind(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror)
        return 1
    log.info(
        "todo-api %s serving on http://%s:%d with %d worker(s) (APP_ENV=%s)",
        __version__,
        host,
        port,
        workers,
        settings.app_env,
    )
    if workers == 1:
        _run_worker(settings, sock)
        log.info("stopped")
        return 0
    return _supervise(settings, sock, workers)


def _metrics_dir() -> str | None:
    """Workers share metrics through files in PROMETHEUS_MULTIPROC_DIR. Use
    the operator's folder (emptied: old samples would be counted) or a
    private temporary one. Returns the folder to remove at exit, if ours."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        return None
    ours = tempfile.mkdtemp(prefix="todo-api-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = ours
    return ours


def _supervise(settings: Settings, sock: socket.socket, workers: int) -> int:
    """Fork `workers` processes that accept on one socket; forward SIGTERM and
    SIGINT to them; restart one that dies unasked."""
    metrics_dir = _metrics_dir()  # before any worker imports prometheus_client
    try:
        return _run_workers(settings, sock, workers)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_workers(settings: Settings, sock: socket.socket, workers: int) -> int:
    stopping = False
    children: dict[int, int] = {}  # pid -> slot

    def spawn(slot: int) -> None:
        # Blocked across the fork: a stop signal must not kill a worker that
        # has not yet installed its graceful handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                _run_worker(settings, sock)
            except BaseException:
                log.exception("worker %d crashed", slot)
                code = 1
            finally:
                os._exit(code)
        children[pid] = slot
        # A stop that arrived during the fork is handled now, this child included.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(workers):
        if stopping:
            break
        spawn(slot)

    worst = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        slot = children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        from service.metrics import mark_worker_dead

        mark_worker_dead(pid)
        if slot is None:
            continue
        if stopping:
            worst = max(worst, abs(code))
            continue
        log.error("worker %d (pid %d) exited with %d; restarting it", slot, pid, code)
        time.sleep(0.5)
        spawn(slot)
    log.info("stopped")
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
