"""Task inputs and outputs. Limits equal the tasks CHECK constraints
(sql/migrations/0002.create_tasks.sql)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.schemas import QuerySchema, StrictBoolean, StrictSchema, Text

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
Q_MAX = 200
LIMIT_DEFAULT = 50
LIMIT_MAX = 100
SORTS = ("-created_at", "created_at", "-updated_at", "updated_at", "-title", "title")


def _title(**kw: Any) -> Text:
    return Text(not_blank=True, validate=validate.Length(min=1, max=TITLE_MAX), **kw)


def _description(**kw: Any) -> Text:
    return Text(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX), **kw)


class TaskCreateSchema(StrictSchema):
    title = _title(required=True)
    description = _description(load_default=None)
    completed = StrictBoolean(load_default=False)


class TaskReplaceSchema(StrictSchema):
    """PUT: title required; a field left out keeps its value."""

    title = _title(required=True)
    description = _description()
    completed = StrictBoolean()


class TaskPatchSchema(StrictSchema):
    """PATCH: any of the fields, at least one."""

    title = _title()
    description = _description()
    completed = StrictBoolean()

    @validates_schema
    def _at_least_one(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Send at least one of title, description, completed.", "_schema")


class TaskCompleteSchema(StrictSchema):
    """PATCH .../complete with a body: set, rather than toggle."""

    completed = StrictBoolean(required=True)


class QueryBoolean(fields.Boolean):
    """`true` or `false` in a query string, nothing else."""

    truthy = {"true"}
    falsy = {"false"}
    default_error_messages = {"invalid": "Must be true or false."}


class TaskListQuerySchema(QuerySchema):
    completed = QueryBoolean()
    q = Text(validate=validate.Length(max=Q_MAX))
    sort = fields.String(validate=validate.OneOf(SORTS), load_default="-created_at")
    limit = fields.Integer(
        strict=False, validate=validate.Range(min=1, max=LIMIT_MAX), load_default=LIMIT_DEFAULT
    )
    cursor = Text(validate=validate.Length(min=1, max=2048))


class TaskSchema(Schema):
    """A task as the API returns it (documentation; see `task_json`)."""

    id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    completed = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


def task_json(row: Any) -> dict[str, Any]:
    # str() here: asyncpg's UUID is not a type orjson serialises natively.
    return {
        "id": str(row["id"]),
        "user_id": str(row["user_id"]),
        "title": row["title"],
        "description": row["description"],
        "completed": row["completed"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
