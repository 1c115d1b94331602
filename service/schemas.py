"""What every schema shares: strict input types, unknown fields refused, echoed
read-only fields ignored, text PostgreSQL can store; the fast row serializer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load

# Fields the server owns. A frontend may send back an object it received.
READ_ONLY_FIELDS = frozenset({"id", "user_id", "created_at", "updated_at", "completed_at"})

# A title or a name is one line that shows: no control or line-separator
# characters, and not only spaces, format characters or blank letters.
# Written in the dialect Python and JavaScript share (the OpenAPI pattern);
# the leading class and the next are disjoint, so matching is linear.
_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_INVISIBLE = (
    r" \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"  # spaces
    r"\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\uffa0\ufeff"
)
NO_NUL_PATTERN = r"^[^\x00]*$"
LINE_PATTERN = rf"^[{_INVISIBLE}]*[^{_INVISIBLE}{_FORBIDDEN}][^{_FORBIDDEN}]*$"
_FORBIDDEN_CHAR = re.compile(rf"[{_FORBIDDEN}]")
_VISIBLE_CHAR = re.compile(rf"[^{_INVISIBLE}{_FORBIDDEN}]")


def read_only(field: type[fields.Field]) -> fields.Field:
    return field(dump_only=True, metadata={"description": "Read-only; ignored if sent."})


class StrictSchema(Schema):
    """Request bodies: unknown fields are a 422 (marshmallow's default); the
    read-only fields are ignored, so a frontend may send back what it got."""

    id = read_only(fields.UUID)
    user_id = read_only(fields.UUID)
    created_at = read_only(fields.DateTime)
    updated_at = read_only(fields.DateTime)

    @pre_load
    def _drop_read_only(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            # Before any field is looked at: thousands of unknown keys would
            # each cost a check and a line in a huge 422 (API.md, "Limits").
            if len(data) > len(self.fields):
                raise ValidationError(
                    f"The body has {len(data)} fields; this request takes at most "
                    f"{len(self.fields)}.",
                    "_schema",
                )
            return {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}
        return data


class Text(fields.String):
    """A JSON string PostgreSQL can store: no NUL, valid Unicode (no lone
    surrogates); with `line=True`, one line that shows (see LINE_PATTERN).
    Length limits come from `validate=`."""

    def __init__(self, *, line: bool = False, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("pattern", LINE_PATTERN if line else NO_NUL_PATTERN)
        super().__init__(**kwargs)
        if line:
            self.validators.append(_one_visible_line)

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


def as_visible_line(value: str) -> str:
    """Text from elsewhere (a Better Auth token's name) made one visible line, or
    "" when nothing that shows is left."""
    text = _FORBIDDEN_CHAR.sub(" ", value.encode("utf-8", "ignore").decode("utf-8")).strip()
    return text if _VISIBLE_CHAR.search(text) else ""


def _one_visible_line(value: str) -> None:
    """No control characters or line breaks, and something that shows (the
    database's `~ '[^[:space:]]'` checks the spaces alone)."""
    if _FORBIDDEN_CHAR.search(value):
        raise ValidationError("Must be one line without control characters.")
    if not _VISIBLE_CHAR.search(value):
        raise ValidationError("Must not be blank or only invisible characters.")


# Output fields whose database value orjson renders as it is.
_AS_IS = (fields.String, fields.Boolean, fields.Integer, fields.DateTime, fields.Date, fields.List)


def row_serializer(schema: type[Schema]) -> Callable[[Any], dict[str, Any]]:
    """A function that turns a database row into `schema`'s output as fast as a
    dict literal (dump() is far too slow), generated as dataclasses does."""
    items = []
    for name, field in schema().dump_fields.items():
        value = f"row[{(field.attribute or name)!r}]"
        if isinstance(field, fields.UUID):
            value = f"str({value})"  # asyncpg's UUID is not a type orjson knows
        elif not isinstance(field, _AS_IS):
            raise TypeError(f"{schema.__name__}.{name}: no serializer for {type(field).__name__}")
        items.append(f"{(field.data_key or name)!r}: {value}")
    source = f"def serialize(row):\n    return {{{', '.join(items)}}}\n"
    namespace: dict[str, Any] = {}
    # The source is built from the schema's field names only, never from input.
    exec(compile(source, f"<{schema.__name__} row serializer>", "exec"), namespace)  # noqa: S102
    return namespace["serialize"]
