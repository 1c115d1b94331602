"""What every input schema shares: strict types, unknown fields refused,
read-only fields a frontend echoes back ignored, text PostgreSQL can store."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load

# Fields the server owns. A frontend may send back an object it received.
READ_ONLY_FIELDS = frozenset({"id", "user_id", "created_at", "updated_at"})


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _drop_read_only(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}
        return data


class Text(fields.String):
    """A JSON string PostgreSQL can store: no NUL, valid Unicode (no lone
    surrogates). Length limits come from `validate=`."""

    default_error_messages = {
        "nul": "Must not contain the NUL character.",
        "encoding": "Must be valid Unicode text.",
    }

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("encoding") from None
        return text


class StrictBoolean(fields.Boolean):
    """A JSON boolean only: no "yes", no 1, no "true"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def not_blank(value: str) -> None:
    """Not only whitespace (the database's `~ '[^[:space:]]'` checks)."""
    if not value.strip():
        raise ValidationError("Must not be blank.")
