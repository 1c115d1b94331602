"""Logging: JSON lines (LOG_FORMAT=json) or readable text, every record of a
request stamped with its request id."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import os
import re
import sys
import time
import types
from typing import Any, NamedTuple

import orjson

from service import internals

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Attributes every LogRecord has; anything else was passed in `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


_plain_record = logging.getLogRecordFactory()


def _stamped_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record stamped with the current request id at creation, so any
    handler (ours, pytest's, a library's) sees it."""
    record = _plain_record(*args, **kwargs)
    record.request_id = request_id_var.get()
    return record


logging.setLogRecordFactory(_stamped_record)


def printable(text: str) -> str:
    """`text` with every character that is not printable (line breaks,
    U+2028, terminal escapes) written as its Python escape: what a line
    copies from a request can neither start a forged line nor drive a
    terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


# orjson escapes what JSON must (below U+0020); what else could break a line
# or reach a terminal (DEL, C1, U+2028) is escaped with every non-ASCII
# character, as json.dumps writes them, so JSON lines are plain ASCII.
_NOT_ASCII = re.compile(r"[\x7f-\U0010ffff]+")


class Entry(NamedTuple):
    """One line, before a formatter writes it as JSON or text."""

    created: float
    level: str
    logger: str
    msg: str
    request_id: str | None
    fields: dict[str, Any]

    @classmethod
    def of(cls, record: logging.LogRecord, fields: dict[str, Any]) -> Entry:
        rid = getattr(record, "request_id", None)
        return cls(record.created, record.levelname, record.name, record.getMessage(), rid, fields)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, request_id, and every
    `extra=` field."""

    _second = -1
    _second_text = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime a second, not one a line
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def line(self, entry: Entry) -> str:
        doc: dict[str, Any] = {
            "ts": self._timestamp(entry.created),
            "level": entry.level,
            "logger": entry.logger,
            "msg": entry.msg,
        }
        if entry.request_id:
            doc["request_id"] = entry.request_id
        doc.update(entry.fields)
        try:
            line = orjson.dumps(doc, default=str).decode()
        except orjson.JSONEncodeError:  # a lone surrogate: a header's undecodable byte
            line = json.dumps(doc, default=str, separators=(",", ":"))
        if not line.isascii() or "\x7f" in line:  # both O(1) or memchr: the hot path
            line = _NOT_ASCII.sub(lambda m: json.dumps(m[0])[1:-1], line)
        return line

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return self.line(Entry.of(record, fields))


class TextFormatter(logging.Formatter):
    """`2026-11-28 10:00:00,123 INFO    logger [request id] message`."""

    def line(self, entry: Entry) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created))
        millis = int((entry.created - int(entry.created)) * 1000)
        rid = entry.request_id or "-"
        return f"{stamp},{millis:03d} {entry.level:<7} {entry.logger} [{rid}] {entry.msg}"

    def format(self, record: logging.LogRecord) -> str:
        # The JSON line's extra fields are left out; the message may hold a
        # request's path or values. A traceback after it is many lines anyway.
        entry = Entry.of(record, {})
        text = self.line(entry._replace(msg=printable(entry.msg)))
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


# Where `configure` sends lines: the buffered stream and its formatter. The
# access line skips the LogRecord and goes straight to them.
_output = types.SimpleNamespace(stream=None, formatter=JsonFormatter())
ACCESS = logging.getLogger("service.access")
FLUSH_SECONDS = 0.5


def access_line(
    method: str,
    path: str,
    route: str | None,
    status: int,
    ms: float | None,
    rid: str | None,
    client: str,
    user_id: Any = None,
) -> None:
    """The one line a request gets (malformed HTTP's from service.internals),
    with the client address and, once the token was checked, the user id.
    The hot path: once `configure` ran, written to its buffer, no LogRecord."""
    user = None if user_id is None else str(user_id)  # no default= call in orjson
    took = "" if ms is None else f" {ms:.2f}ms"
    # The path is decoded: a %0A in it must not start a forged text line.
    msg = f"{client} {method} {printable(path)} {status}{took}"
    if user is not None:
        msg += f" user {user}"
    fields = {"method": method, "path": path, "route": route, "status": status, "duration_ms": ms}
    fields["client"] = client
    if user is not None:
        fields["user_id"] = user
    if _output.stream is None:
        if ACCESS.isEnabledFor(logging.INFO):
            token = request_id_var.set(rid)
            ACCESS.info(msg, extra=fields)
            request_id_var.reset(token)
        return
    line = _output.formatter.line(Entry(time.time(), "INFO", ACCESS.name, msg, rid, fields))
    _output.stream.write(line + "\n")


def flush() -> None:
    """Write out the buffered lines (service.app: every FLUSH_SECONDS, and at exit)."""
    if _output.stream is not None:
        _output.stream.flush()


def first_line(exc: BaseException) -> str:
    """An exception's message for a log line: its first line, cut short
    (driver messages run long; the connection URL is never in them)."""
    return (str(exc).splitlines() or [""])[0][:300]


def configure(level: str = "INFO", fmt: str = "json") -> None:
    internals.skip_caller_lookup()
    # What no line of ours uses, and logging would compute per record.
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
    _output.formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler = logging.StreamHandler(stream)  # flushes after each record
    handler.setFormatter(_output.formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _output.stream = stream if root.isEnabledFor(logging.INFO) else None
