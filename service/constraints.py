"""The database constraints a client can run into, by name, and what the
client gets for each: one table for service/errors.py, scripts/sql-review and
the OpenAPI document. A violation not listed is a bug (500): the validators
refuse the same values first (tests/test_limits.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.tasks.repeat import REPEAT_MAX
from service.tasks.schemas import DESCRIPTION_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX


@dataclass(frozen=True, slots=True)
class Constraint:
    status: int  # what the client gets
    raised_by: tuple[str, ...]  # the query files whose statement can violate it
    says: str  # the client's error in a few words, for sql/README.md
    problem: str | None = None  # the service.errors problem, by class name
    field: str | None = None  # or a 422 on this field, in its validator's words:
    message: str | None = None


def _field(field: str, message: str, *raised_by: str) -> Constraint:
    """A CHECK that mirrors a field's validator: a 422 on that field."""
    return Constraint(422, raised_by, f"on `{field}`", field=field, message=message)


_WRITES_TASKS = ("create_task", "update_task")

CONSTRAINTS: dict[str, Constraint] = {
    "users_password_email_key": Constraint(
        409, ("create_user",), "the email is taken", problem="EmailTaken"
    ),
    "sessions_user_id_fkey": Constraint(
        401, ("create_session",), "the account is gone", problem="AccountGone"
    ),
    "tasks_title_check": _field(
        "title", f"Must be 1 to {TITLE_MAX} characters and not blank.", *_WRITES_TASKS
    ),
    "tasks_description_check": _field(
        "description", f"Must be at most {DESCRIPTION_MAX} characters.", *_WRITES_TASKS
    ),
    "tasks_tags_check": _field(
        "tags",
        f"At most {TAGS_MAX} tags of 1 to {TAG_MAX} characters, not blank, "
        "none equal to another ignoring case.",
        *_WRITES_TASKS,
    ),
    "tasks_repeat_check": _field(
        "repeat", f"At most {REPEAT_MAX} characters, and only with a due_at.", *_WRITES_TASKS
    ),
    "tasks_user_id_fkey": Constraint(
        401, ("create_task",), "the token's account is gone", problem="AccountGone"
    ),
}


def statuses(query: str) -> frozenset[int]:
    """The statuses a query's constraint violations answer, for the OpenAPI
    document: `statuses("create_task")` is {401, 422}."""
    return frozenset(c.status for c in CONSTRAINTS.values() if query in c.raised_by)
