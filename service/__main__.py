"""The `todo-api` command (also `python -m service`): serve | migrate | rollback."""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from service import __version__, logs
from service.settings import Settings, SettingsError

log = logging.getLogger("service")


# Allocations between young-generation collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000
BREAK_LOCK_HELP = "first remove the migration lock a killed migrate left behind"
# What migrate and rollback log: (the ids done, nothing to do).
_MIGRATION_LINES = {
    "migrate": ("applied %d migration(s): %s", "schema is up to date; nothing to apply"),
    "rollback": ("rolled back %d migration(s): %s", "nothing to roll back"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description="The todo-api service.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
    port = functools.partial(_positive, most=65535)
    serve.add_argument("--port", type=port, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=_positive, default=1, help="processes sharing the port (default 1)"
    )

    migrate = sub.add_parser("migrate", help="apply every pending migration, under yoyo's lock")
    migrate.add_argument("--break-lock", action="store_true", help=BREAK_LOCK_HELP)

    rollback = sub.add_parser("rollback", help="roll back the newest migrations")
    rollback.add_argument(
        "--count", type=_positive, default=1, help="how many migrations (default 1)"
    )
    rollback.add_argument("--break-lock", action="store_true", help=BREAK_LOCK_HELP)
    return parser


def _positive(text: str, most: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    if most is not None and value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most}")
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

    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.workers)
    return _migrations(settings, args)


def _migrations(settings: Settings, args: argparse.Namespace) -> int:
    """Run migrate or rollback; one line saying what it did, or why it failed."""
    from service import migrations

    url, folder = settings.database_url, settings.migrations_dir
    if args.command == "migrate" and not settings.is_production:
        try:
            migrations.ensure_database(url)
        except Exception as exc:  # a convenience only; migrate reports the real error
            log.warning("could not check or create the database: %s", type(exc).__name__)
    try:
        if args.command == "migrate":
            ids = migrations.migrate(url, folder, break_lock=args.break_lock)
        else:
            ids = migrations.rollback(url, folder, args.count, break_lock=args.break_lock)
    except Exception as exc:
        log.error("%s failed: %s: %s", args.command, type(exc).__name__, logs.first_line(exc))
        return 1
    done, nothing = _MIGRATION_LINES[args.command]
    if ids:
        log.info(done, len(ids), ", ".join(ids))
    else:
        log.info(nothing)
    return 0


def _bind(host: str, port: int, what: str = "") -> socket.socket | None:
    """A listening socket, or None after one line saying why not."""
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        log.error("cannot listen on %s:%d%s: %s", host, port, what, exc.strerror)
        return None
    return sock


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests (up to
    SHUTDOWN_TIMEOUT) and return 0; what keeps it from starting is one line and 1."""
    # Held back until the servers' handlers are in place: a stop while starting is graceful.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    sock = _bind(host, port)
    if sock is None:
        return 1
    if settings.metrics_port == port:
        log.error("METRICS_PORT must not be the API port (%d)", port)
        return 1
    metrics_sock = None
    if settings.metrics_port is not None:
        metrics_sock = _bind(host, settings.metrics_port, " (METRICS_PORT)")
        if metrics_sock is None:
            return 1
    metrics_dir = _metrics_dir() if workers > 1 else None  # before prometheus_client is imported
    master = os.getpid()
    try:
        # Built once, before any worker exists (a broken query file stops the command).
        from service.app import create_app

        try:
            app = create_app(settings)
        except Exception as exc:
            log.error("cannot start: %s: %s", type(exc).__name__, logs.first_line(exc))
            return 1
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        log.info(
            "todo-api %s serving on %s with %d worker(s) (APP_ENV=%s)",
            __version__,
            url,
            workers,
            settings.app_env,
        )
        if metrics_sock is not None:
            from service import metrics
            from service.middlewares import problem_middleware

            # Every process answers scrapes on it too (see metrics.listener).
            app.cleanup_ctx.append(metrics.listener(metrics_sock, [problem_middleware]))
            port = metrics_sock.getsockname()[1]
            log.info("/metrics on port %d only (METRICS_PORT), not on %s", port, url)
        elif settings.is_production:
            log.info("/metrics is not served: APP_ENV=production and METRICS_PORT is not set")
        # What was built so far lives as long as the process: the collector
        # stops traversing it (and workers share its pages), and collects
        # young objects less often: each request makes many, short-lived.
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD)
        if workers == 1:
            import uvloop
            from aiohttp import web

            app.on_startup.append(_unblock_stop_signals)
            web.run_app(
                app,
                sock=sock,
                shutdown_timeout=settings.shutdown_timeout,
                access_log=None,  # service.middlewares writes the access line
                print=None,
                loop=uvloop.new_event_loop(),
            )
            code = 0
        else:
            from service import workers as gunicorn_workers

            code = gunicorn_workers.serve(app, sock, workers, settings.shutdown_timeout)
        if code == 0:
            log.info("stopped")
        return code
    finally:
        if metrics_dir and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)


async def _unblock_stop_signals(_app: object) -> None:
    # run_app's handlers are installed: a SIGTERM that came while starting drains as usual.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _metrics_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR for the workers: the operator's, emptied of old
    samples, or a private temporary one, returned to be removed at exit."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for old in Path(given).glob("*.db"):
            old.unlink()
        return None
    ours = tempfile.mkdtemp(prefix="todo-api-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = ours
    return ours


if __name__ == "__main__":
    sys.exit(main())
