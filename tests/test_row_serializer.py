"""The fast output serializers are generated from the output schemas, so a
field added to a schema is in every response at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from marshmallow import Schema, fields

from service.auth.schemas import UserSchema, user_json
from service.schemas import row_serializer
from service.tasks.schemas import TaskSchema, task_json

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schema", "serialize"), [(TaskSchema, task_json), (UserSchema, user_json)]
)
def test_each_serializer_writes_exactly_its_schemas_fields(schema, serialize):
    row = {name: f"<{name}>" for name in schema().fields} | {"version": 3, "password_hash": "x"}
    for name, field in schema().fields.items():
        if isinstance(field, fields.UUID):
            row[name] = uuid.uuid4()
    out = serialize(row)
    assert list(out) == list(schema().fields)
    for name, field in schema().fields.items():
        expected = str(row[name]) if isinstance(field, fields.UUID) else row[name]
        assert out[name] == expected


def test_data_key_attribute_and_load_only_are_honoured():
    class Shape(Schema):
        id = fields.UUID(data_key="uuid")
        label = fields.String(attribute="title")
        created_at = fields.DateTime()
        secret = fields.String(load_only=True)

    row = {"id": uuid.UUID(int=1), "title": "t", "created_at": NOW, "secret": "s"}
    assert row_serializer(Shape)(row) == {
        "uuid": "00000000-0000-0000-0000-000000000001",
        "label": "t",
        "created_at": NOW,
    }


def test_a_field_it_cannot_pass_through_is_refused_at_import():
    class Money(Schema):
        amount = fields.Decimal()

    with pytest.raises(TypeError, match=r"Money\.amount"):
        row_serializer(Money)
