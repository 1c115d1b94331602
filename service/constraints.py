"""The database constraints a client can run into, by name, and what the
client gets for each: the one table the error middleware
(service/errors.py), scripts/sql-review (sql/README.md) and the OpenAPI
document read. Plain data: it imports nothing that renders an error.

Any violation not listed is a bug and answers 500: the validators refuse the
same values first, and each CHECK limit equals its validator's limit
(tests/test_limits.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.tasks.schemas import DESCRIPTION_MAX, TITLE_MAX


@dataclass(frozen=True, slots=True)
class Constraint:
    status: int  # what the client gets
    raised_by: tuple[str, ...]  # the query files whose statement can violate it
    says: str  # the client's error in a few words, for sql/README.md
    field: str | None = None  # 422: the field, with its validator's message
    message: str | None = None
    problem: str | None = None  # otherwise: the service.errors problem, by class name


CONSTRAINTS: dict[str, Constraint] = {
    "users_password_email_lower_key": Constraint(
        status=409,
        raised_by=("create_user",),
        says="the email is taken",
        problem="EmailTaken",
    ),
    "tasks_title_check": Constraint(
        status=422,
        raised_by=("create_task", "update_task"),
        says="on `title`",
        field="title",
        message=f"Must be 1 to {TITLE_MAX} characters and not blank.",
    ),
    "tasks_description_check": Constraint(
        status=422,
        raised_by=("create_task", "update_task"),
        says="on `description`",
        field="description",
        message=f"Must be at most {DESCRIPTION_MAX} characters.",
    ),
    "tasks_user_id_fkey": Constraint(
        status=401,
        raised_by=("create_task",),
        says="the token's account is gone",
        problem="AccountGone",
    ),
}


def raised_by(query: str) -> dict[str, Constraint]:
    """The constraints a query file's statement can violate, by name; a
    listing's statements (`list_tasks[title]`) count as their file."""
    file = query.partition("[")[0]
    return {name: c for name, c in CONSTRAINTS.items() if file in c.raised_by}


def statuses(query: str) -> frozenset[int]:
    """The statuses a query's constraint violations answer, for the OpenAPI
    document: `statuses("create_task")` is {401, 422}."""
    return frozenset(c.status for c in raised_by(query).values())
