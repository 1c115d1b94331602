"""Task inputs and outputs. Limits equal the tasks CHECK constraints
(their definitions, migration by migration, are in sql/README.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from service.schemas import StrictBoolean, StrictSchema, Text, read_only, row_serializer
from service.tasks import repeat as rrules

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
PRIORITIES = ("none", "low", "medium", "high")  # in sort order
TAGS_MAX = 20
TAG_MAX = 40
Q_MAX = 200
LIMIT_DEFAULT = 50
LIMIT_MAX = 100
CHANGES_LIMIT_DEFAULT = 100
CHANGES_LIMIT_MAX = 500


def _title(**kw: Any) -> Text:
    return Text(line=True, validate=validate.Length(min=1, max=TITLE_MAX), **kw)


def _description(**kw: Any) -> Text:
    return Text(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX), **kw)


def _priority(**kw: Any) -> fields.String:
    return fields.String(
        validate=validate.OneOf(PRIORITIES),
        metadata={"description": "none, low, medium or high."},
        **kw,
    )


# Years 0002 to 9998 as written: any offset then keeps the UTC form within
# years 1 to 9999, which Python can read back (PostgreSQL would store more).
YEARS = range(2, 9999)
_YEAR = (
    "(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
)


def _rfc3339(year: str) -> str:
    """RFC 3339's date-time as JSON Schema checkers read it: T and Z in either
    case, no second 60 (Python cannot hold it). [0-9]: \\d takes any digits."""
    hh_mm = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"
    return (
        f"^{year}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
        f"[Tt]{hh_mm}:[0-5][0-9](?:\\.[0-9]+)?(?:[Zz]|[+-]{hh_mm})$"
    )


# What the OpenAPI document says of every timestamp a request carries.
MOMENT_PATTERN = _rfc3339(_YEAR)
# The same, any four-digit year, so a year out of range gets its own message.
_MOMENT = re.compile(_rfc3339("[0-9]{4}").removesuffix("$") + r"\Z")


class Moment(fields.AwareDateTime):
    """An RFC 3339 date-time with an offset (answered in UTC), years 0002 to
    9998, and none of the other forms fromisoformat reads. `query=True`: a
    query parameter, where an unencoded `+` arrives as a space."""

    default_error_messages = {
        "invalid": "Must be an RFC 3339 date-time with an offset, such as "
        "2027-03-01T09:30:00Z or 2027-03-01T10:30:00+01:00.",
        "year": "The year must be between 0002 and 9998.",
    }
    _PLUS = re.compile(r" (?=[0-9]{2}:[0-9]{2}\Z)")

    def __init__(self, *, query: bool = False, **kw: Any) -> None:
        kw.setdefault("metadata", {})["pattern"] = MOMENT_PATTERN
        super().__init__(**kw)
        self.query = query

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str) and self.query:
            value = self._PLUS.sub("+", value)
        if not isinstance(value, str) or _MOMENT.match(value) is None:
            raise self.make_error("invalid")
        # fromisoformat reads only an upper-case T and Z.
        moment = super()._deserialize(value.upper(), attr, data, **kwargs)
        if moment.year not in YEARS:
            raise self.make_error("year")
        return moment


def _moment(what: str, **kw: Any) -> Moment:
    return Moment(
        allow_none=True,
        metadata={"description": f"{what}; RFC 3339 with an offset (years 0002 to 9998), or null."},
        **kw,
    )


def tag_key(tag: str) -> str:
    """A tag as the database compares tags: PostgreSQL's lower() (UTF-8), which
    str.lower() matches but for U+0130 and a word-final capital sigma."""
    return tag.replace("\u0130", "i").replace("\u03a3", "\u03c3").lower()


class Tags(fields.List):
    """Tags as tasks_tags_check allows them; two that differ only in case
    (tag_key) are one, the first spelling kept; order as given."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(
            Text(line=True, validate=validate.Length(min=1, max=TAG_MAX)),
            validate=validate.Length(max=TAGS_MAX),
            metadata={
                "description": f"At most {TAGS_MAX} tags of 1 to {TAG_MAX} characters as "
                "sent, stored trimmed; two that differ only in case are one (the first "
                "spelling is kept)."
            },
            **kw,
        )

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[str]:
        # Checked as sent (as the OpenAPI maxItems and maxLength say), then trimmed.
        if isinstance(value, list) and len(value) > TAGS_MAX:
            raise ValidationError(f"At most {TAGS_MAX} tags.")
        kept: dict[str, str] = {}
        for tag in super()._deserialize(value, attr, data, **kwargs):
            tag = tag.strip()
            kept.setdefault(tag_key(tag), tag)
        return list(kept.values())


class CommaList(fields.String):
    """A query parameter's comma-separated items, each loaded by `item`;
    an empty item is a 422 (a stray comma is a mistake, not "any")."""

    def __init__(self, item: fields.Field, max_items: int, **kw: Any) -> None:
        super().__init__(validate=validate.Length(min=1, max=2048), **kw)
        self.item, self.max_items = item, max_items

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        items = super()._deserialize(value, attr, data, **kwargs).split(",")
        if len(items) > self.max_items:
            raise ValidationError(f"At most {self.max_items} items, separated by commas.")
        return [self.item.deserialize(item.strip()) for item in items]


class RepeatRule(Text):
    """An RRULE value of API.md's subset, stored in one spelling."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(
            allow_none=True,
            metadata={
                "description": "An RFC 5545 RRULE value: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY, "
                "optionally INTERVAL, BYDAY, BYMONTHDAY, COUNT (the times it is due, this "
                "one included) or UNTIL, e.g. FREQ=WEEKLY;BYDAY=MO,WE; null for none. Needs "
                "a due_at. Completing the task moves due_at to the next occurrence (remind_at "
                "with it) and keeps it open; with none left, it completes.",
                "maxLength": rrules.REPEAT_MAX,
            },
            **kw,
        )

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return rrules.canonical(super()._deserialize(value, attr, data, **kwargs))


class TaskCreateSchema(StrictSchema):
    title = _title(required=True)
    description = _description(load_default=None)
    completed = StrictBoolean(load_default=False)
    priority = _priority(load_default="none")
    due_at = _moment("When it is due", load_default=None)
    remind_at = _moment("When to remind", load_default=None)
    tags = Tags(load_default=list)
    repeat = RepeatRule(load_default=None)
    completed_at = read_only(fields.DateTime)

    @validates_schema
    def _repeats(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("repeat") is not None:
            try:
                rrules.check_occurs(data["repeat"], data.get("due_at"))
            except ValidationError as exc:
                raise ValidationError(exc.messages, "repeat") from None


class _TaskFields(StrictSchema):
    """The fields PUT and PATCH take, none required, none defaulted."""

    title = _title()
    description = _description()
    completed = StrictBoolean()
    priority = _priority()
    due_at = _moment("When it is due")
    remind_at = _moment("When to remind")
    tags = Tags()
    repeat = RepeatRule()
    completed_at = read_only(fields.DateTime)


class TaskReplaceSchema(_TaskFields):
    """PUT: title required; a field left out keeps its value."""

    title = _title(required=True)


PATCHABLE = tuple(_TaskFields().load_fields)
# Where NULL is a value: the update statements take whether each was sent.
NULLABLE = tuple(n for n, f in _TaskFields().load_fields.items() if f.allow_none)


class TaskPatchSchema(_TaskFields):
    """PATCH: any of the fields, at least one."""

    # Said in the OpenAPI schema too, so a generated client (and the fuzzer)
    # knows an empty object is not a valid patch.
    json_schema_extra = {"anyOf": [{"required": [name]} for name in PATCHABLE]}

    @validates_schema
    def _at_least_one(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError(f"Send at least one of {', '.join(PATCHABLE)}.", "_schema")


class TaskCompleteSchema(StrictSchema):
    """PATCH .../complete with a body: set, rather than toggle."""

    completed = StrictBoolean(required=True)


class QueryBoolean(fields.Boolean):
    """`true` or `false` in a query string, nothing else."""

    truthy = {"true"}
    falsy = {"false"}
    default_error_messages = {"invalid": "Must be true or false."}


# Listing: the canonical parameters plus the Hackathon "Evolution of Todo"
# aliases (shared/API.md, "Listing"), all resolved to the canonical form.

# Every `sort` value -> (field, direction); None lets order/sort_order decide.
_SORT_VALUES: dict[str, tuple[str, str | None]] = {
    "-created_at": ("created_at", "desc"),
    "created_at": ("created_at", "asc"),
    "-updated_at": ("updated_at", "desc"),
    "updated_at": ("updated_at", "asc"),
    "-title": ("title", "desc"),
    "title": ("title", None),
    "due_at": ("due_at", "asc"),
    "-due_at": ("due_at", "desc"),
    "priority": ("priority", "asc"),
    "-priority": ("priority", "desc"),
    "created": ("created_at", None),  # alias
    "updated": ("updated_at", None),  # alias
    "due_date": ("due_at", None),  # alias
}
SORTS = tuple(_SORT_VALUES)  # every value `sort` accepts, canonical ones first
# `sort_by` names a field only; the direction comes from order/sort_order.
_SORT_BY = {
    name: _SORT_VALUES[name][0]
    for name in "created_at created updated_at updated title due_date due_at priority".split()  # noqa: SIM905
}
# Without a direction: newest first for created and updated, highest priority
# first, else ascending.
_DESCENDING = {"created_at", "updated_at", "priority"}
# status -> completed; "all" is no filter.
_STATUS = {"all": None, "pending": False, "active": False, "completed": True}
_DIRECTIONS = ("asc", "desc")
_CLASH = "Contradicts {given}; give one of them, or both with the same meaning."


def _one_of(values: Iterable[str], description: str, **metadata: str) -> fields.String:
    """A query parameter that takes one of `values`."""
    return fields.String(
        validate=validate.OneOf(tuple(values)),
        metadata={"description": description, **metadata},
    )


def _search(description: str) -> Text:
    return Text(validate=validate.Length(max=Q_MAX), metadata={"description": description})


_CANONICAL = ("completed", "q", "limit", "cursor", "due_after", "due_before", "overdue")


class TaskListQuerySchema(Schema):
    completed = QueryBoolean(
        metadata={"description": "Only done (true) or only open (false) tasks."}
    )
    q = _search(
        "Only tasks whose title or description contains this, case-insensitively "
        "(a plain substring: `%`, `_` and `\\` are ordinary characters). A q with 3 "
        "letters or digits in a row is found through a trigram index, so its cost "
        "follows the matches, not the number of tasks; any other q filters the "
        "caller's tasks as they are read in the requested order."
    )
    priority = CommaList(
        fields.String(validate=validate.OneOf(PRIORITIES)),
        len(PRIORITIES),
        metadata={
            "description": "Only tasks of these priorities, comma-separated: "
            "`high` or `high,medium`.",
            "example": "high,medium",
            "pattern": "^(?:none|low|medium|high)(?:,(?:none|low|medium|high)){0,3}$",
        },
    )
    tag = CommaList(
        Text(line=True, validate=validate.Length(min=1, max=TAG_MAX)),
        TAGS_MAX,
        metadata={
            "description": "Only tasks carrying every one of these tags, comma-separated, "
            "compared ignoring case and surrounding spaces: `work` or `work,home`. "
            "Served by an index of each person's tags, so a tag nobody has costs "
            "one probe. A tag with a comma in it cannot be named here.",
            "example": "work,home",
        },
    )
    due_after = Moment(
        query=True,
        metadata={
            "description": "Only tasks due at or after this moment (RFC 3339 with an "
            "offset, years 0002 to 9998; `+` may arrive unencoded, as a space). Tasks "
            "without a due_at never match.",
        },
    )
    due_before = Moment(
        query=True,
        metadata={
            "description": "Only tasks due before this moment (exclusive, so "
            "`due_after=<Monday>&due_before=<next Monday>` is one week); written as "
            "due_after. Tasks without a due_at never match.",
        },
    )
    overdue = QueryBoolean(
        metadata={
            "description": "true: only overdue tasks (open, due before now, as "
            "`/api/tasks/summary` counts them); false: only the others."
        }
    )
    sort = _one_of(
        SORTS,
        "Order; ties broken by id. Tasks without a due_at come last in both due_at "
        "orders (among themselves by id, ascending both ways); `priority` runs none, "
        "low, medium, high and `-priority` high first. "
        "`created`, `updated` (newest first), `title` (A to Z) and `due_date` "
        "(soonest first) take their direction from `order`/`sort_order`; the other "
        "values carry their own, and an `order`/`sort_order` contradicting it is a "
        "422. `created`, `updated` and `due_date` are aliases of `-created_at`, "
        "`-updated_at` and `due_at`.",
        default="-created_at",
    )
    limit = fields.Integer(
        strict=False,
        validate=validate.Range(min=1, max=LIMIT_MAX),
        load_default=LIMIT_DEFAULT,
        metadata={"description": "Page size."},
    )
    cursor = Text(
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "Opaque; from the previous page's `Link` header."},
    )
    status = _one_of(
        _STATUS,
        "Alias of `completed`: `all` is no filter, `pending` and `active` mean "
        "`completed=false`, `completed` means `completed=true`. With a `completed` "
        "that means otherwise (`all` with any `completed`), a 422.",
    )
    search = _search("Alias of `q`. With a different `q`, a 422.")
    sort_by = _one_of(
        _SORT_BY,
        "Alias of `sort` that names the field only: the direction is `order` or "
        "`sort_order`, else newest first for created and updated, A to Z for "
        "title, soonest first for due_date (and due_at), highest first for "
        "priority. With a `sort` naming another field, a 422.",
    )
    order = _one_of(
        _DIRECTIONS,
        "Direction for `sort_by` or for `sort=created|updated|title|due_date`; alone, for the "
        "default field (created_at). Contradicting the direction of a `sort` such as "
        "`-title` or `created_at` is a 422.",
    )
    sort_order = _one_of(_DIRECTIONS, "Alias of `order`. With a different `order`, a 422.")

    @post_load
    def _canonical(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The canonical parameters (those given, plus sort and limit); an alias
        contradicting its parameter is a 422. Lists in one order, for the cursor."""
        errors: dict[str, list[str]] = {}
        out = {k: data[k] for k in _CANONICAL if k in data}
        if "priority" in data:
            out["priority"] = sorted(set(data["priority"]), key=PRIORITIES.index)
        if "tag" in data:
            # PostgreSQL lowers them itself (tasks_tag_keys); here only one order.
            out["tag"] = sorted({tag_key(tag): tag for tag in data["tag"]}.values(), key=tag_key)

        if "status" in data:
            meant = _STATUS[data["status"]]
            if "completed" in data and data["completed"] != meant:
                errors["status"] = [_CLASH.format(given="completed")]
            elif meant is not None:
                out["completed"] = meant
        if "search" in data:
            if "q" in data and data["q"] != data["search"]:
                errors["search"] = [_CLASH.format(given="q")]
            out["q"] = data["search"]

        # No sort: created_at, newest first unless order/sort_order says otherwise.
        field, direction = _SORT_VALUES[data.get("sort", "created")]
        if "sort_by" in data:
            if "sort" in data and _SORT_BY[data["sort_by"]] != field:
                errors["sort_by"] = [_CLASH.format(given="sort")]
            field = _SORT_BY[data["sort_by"]]
        order_param = "order" if "order" in data else "sort_order"
        order = data.get(order_param)
        if "order" in data and "sort_order" in data and data["order"] != data["sort_order"]:
            errors["sort_order"] = [_CLASH.format(given="order")]
        if order is not None and direction is not None and order != direction:
            errors[order_param] = [_CLASH.format(given="sort")]
        if errors:
            raise ValidationError(errors)
        direction = direction or order or ("desc" if field in _DESCENDING else "asc")
        out["sort"] = ("-" if direction == "desc" else "") + field
        return out


class TaskSchema(Schema):
    """A task as the API returns it; `task_json` is generated from it."""

    id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    completed = fields.Boolean(required=True)
    completed_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "null while open."}
    )
    priority = fields.String(required=True, validate=validate.OneOf(PRIORITIES))
    due_at = fields.DateTime(required=True, allow_none=True)
    remind_at = fields.DateTime(required=True, allow_none=True)
    tags = fields.List(fields.String(), required=True)
    repeat = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


task_json = row_serializer(TaskSchema)


class TagSchema(Schema):
    name = fields.String(
        required=True, metadata={"description": "The spelling on the oldest task that has it."}
    )
    count = fields.Integer(required=True, metadata={"description": "Tasks carrying it."})


class SummarySchema(Schema):
    total = fields.Integer(required=True)
    open = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    overdue = fields.Integer(
        required=True, metadata={"description": "Open, with a due_at in the past."}
    )


class ChangesQuerySchema(Schema):
    since = Text(
        validate=validate.Length(min=1, max=512),
        metadata={
            "description": "A sync token: the `next` of the previous answer. Without it, "
            "every task, from the start."
        },
    )
    limit = fields.Integer(
        strict=False,
        validate=validate.Range(min=1, max=CHANGES_LIMIT_MAX),
        load_default=CHANGES_LIMIT_DEFAULT,
        metadata={"description": "At most this many tasks and deletions in one answer."},
    )


class DeletedSchema(Schema):
    id = fields.UUID(required=True)
    deleted_at = fields.DateTime(required=True)


class ReminderSchema(Schema):
    id = fields.UUID(required=True)
    remind_at = fields.DateTime(required=True)


class ChangesSchema(Schema):
    """An answer of the change feed."""

    tasks = fields.List(
        fields.Nested(TaskSchema),
        required=True,
        metadata={"description": "Tasks created or changed since the token, oldest change first."},
    )
    deleted = fields.List(
        fields.Nested(DeletedSchema),
        required=True,
        metadata={
            "description": "Tasks deleted since the token (none without one).",
            "example": [
                {"id": "0c2e6a4e-5b7d-4f0e-9c1a-2d3b4c5d6e7f", "deleted_at": "2026-12-07T09:12:44Z"}
            ],
        },
    )
    reminders = fields.List(
        fields.Nested(ReminderSchema),
        required=True,
        metadata={
            "description": "Reminders that fired since the token. This release fires "
            "none yet (API.md, Live events): always empty."
        },
    )
    more = fields.Boolean(
        required=True,
        metadata={"description": "true: more changes follow; call again with since=next now."},
    )
    next = fields.String(
        required=True,
        metadata={
            "description": "The sync token to pass as since: for the rest of this sync "
            "while more is true, else for the next sync. Opaque.",
            "example": "WzcxNjAsIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd.3q2-7wZ",
        },
    )


tag_json = row_serializer(TagSchema)
summary_json = row_serializer(SummarySchema)
