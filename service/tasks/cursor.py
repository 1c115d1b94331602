"""Signed opaque tokens: base64url(JSON) "." base64url(MAC), the MAC also
covering a context. Keyset cursors for GET /api/tasks carry [sort value, id],
and their context is the caller's id, the sort and the filters, so an
edited, moved or reused cursor is a 422; sync tokens (service.tasks.sync)
are signed the same way."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from marshmallow import ValidationError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"todo-api/cursor/v1", hashlib.sha256).digest()

    def _mac(self, payload: bytes, context: tuple[Any, ...]) -> bytes:
        message = payload + b"\x00" + orjson.dumps([str(c) for c in context])
        return hmac.new(self._key, message, hashlib.sha256).digest()[:16]

    def sign(self, data: Any, context: tuple[Any, ...]) -> str:
        """`data` (JSON) as an opaque token, good for this context only."""
        payload = orjson.dumps(data)
        return f"{_b64(payload)}.{_b64(self._mac(payload, context))}"

    def verify(self, token: str, context: tuple[Any, ...]) -> Any:
        """The data `sign` was given for this very context; None for anything else."""
        try:
            payload_text, mac_text = token.split(".")
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            return None
        if not hmac.compare_digest(mac, self._mac(payload, context)):
            return None
        return orjson.loads(payload)

    def encode(self, value: Any, row_id: uuid.UUID, context: tuple[Any, ...]) -> str:
        if isinstance(value, datetime):
            value = (value - _EPOCH) // _MICROSECOND
        return self.sign([value, str(row_id)], context)

    def decode(
        self, cursor: str, context: tuple[Any, ...], *, timestamp: bool
    ) -> tuple[Any, uuid.UUID]:
        """(sort value, id) from a cursor made for this very query, else a
        ValidationError. A timestamp may be null (a task without a due_at)."""
        data = self.verify(cursor, context)
        if data is None:
            raise _invalid()
        value, row_id = data
        if timestamp and value is not None:
            value = _EPOCH + value * _MICROSECOND
        return value, uuid.UUID(row_id)


def _invalid() -> ValidationError:
    return ValidationError({"cursor": ["Not a cursor from this listing; start again without one."]})
