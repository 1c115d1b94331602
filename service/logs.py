"""Logging: JSON lines (LOG_FORMAT=json) or readable text, every record of a
request stamped with its request id."""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import sys
import time
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Attributes every LogRecord has; anything else was passed in `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def _install_record_factory() -> None:
    """Stamp every record with the current request id at creation, so any
    handler (ours, pytest's, a library's) sees it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_stamps_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    factory._stamps_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


class JsonFormatter(logging.Formatter):
    _second = -1
    _second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime a second, not one a line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            doc["request_id"] = record.request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "request_id", None):
            record.request_id = "-"
        return super().format(record)


class AccessLog:
    """One line per request. The hot path: once `configure` has run, lines
    go straight to the log stream in the same shape the formatters give
    (JSON or text), without a LogRecord, and into a 64 KiB buffer that is
    flushed twice a second, when it fills, and at exit; every other log
    record is written at once. Unconfigured (tests), it is a plain logger."""

    FLUSH_SECONDS = 0.5

    def __init__(self) -> None:
        self.logger = logging.getLogger("service.access")
        self._stream: Any = None
        self._json = True
        self._text = TextFormatter()

    def configure(self, stream: Any, fmt: str, enabled: bool) -> None:
        self._stream = stream if enabled else None
        self._json = fmt == "json"
        self._timestamps = JsonFormatter()

    def __call__(
        self, rid: str, method: str, path: str, route: str | None, status: int, ms: float
    ) -> None:
        stream = self._stream
        if stream is None:
            if self.logger.isEnabledFor(logging.INFO):
                self.logger.info(
                    "%s %s %d %.2fms",
                    method,
                    path,
                    status,
                    ms,
                    extra={
                        "method": method,
                        "path": path,
                        "route": route,
                        "status": status,
                        "duration_ms": ms,
                    },
                )
            return
        now = time.time()
        msg = f"{method} {path} {status} {ms:.2f}ms"
        if self._json:
            line = orjson.dumps(
                {
                    "ts": self._timestamps._timestamp(now),
                    "level": "INFO",
                    "logger": "service.access",
                    "msg": msg,
                    "request_id": rid,
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": ms,
                }
            ).decode()
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            line = f"{stamp},{int(now % 1 * 1000):03d} INFO    service.access [{rid}] {msg}"
        stream.write(line + "\n")

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()


access_log = AccessLog()


async def flusher_ctx(_app: Any) -> Any:
    """aiohttp cleanup_ctx: flush buffered access lines twice a second."""
    import asyncio
    import contextlib

    async def loop() -> None:
        while True:
            await asyncio.sleep(AccessLog.FLUSH_SECONDS)
            access_log.flush()

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    access_log.flush()


def first_line(exc: BaseException) -> str:
    """An exception's message for a log line: its first line, cut short
    (driver messages run long; the connection URL is never in them)."""
    return (str(exc).splitlines() or [""])[0][:300]


def configure(level: str = "INFO", fmt: str = "json") -> None:
    # What no line of ours uses, and logging would compute per record (the
    # logging HOWTO's "Optimization"): caller frame, thread, process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Our own buffered writer on stderr's file descriptor: Python's stderr
    # flushes every line, a system call per request.
    stream = open(  # noqa: SIM115 - lives as long as the process
        os.dup(sys.stderr.fileno()),
        "w",
        buffering=1 << 16,
        encoding="utf-8",
        errors="backslashreplace",
    )
    atexit.register(stream.flush)
    handler = logging.StreamHandler(stream)  # flushes after each record
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access_log.configure(stream, fmt, enabled=root.isEnabledFor(logging.INFO))
    # aiohttp's own access log is replaced by ours (service.middlewares).
    logging.getLogger("aiohttp.access").disabled = True
