"""Every validator limit equals its CHECK constraint's: at the limit both
accept, one past it both refuse. A limit moved in one place only (say
DESCRIPTION_MAX to 2001) fails here, though the database would still guard
the data."""

from __future__ import annotations

import asyncpg
import pytest
from marshmallow import ValidationError

from service.auth.betterauth import SUBJECT_MAX
from service.auth.schemas import EMAIL_MAX, NAME_MAX, SignupSchema
from service.constraints import CONSTRAINTS
from service.tasks.repeat import REPEAT_MAX
from service.tasks.schemas import DESCRIPTION_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX, TaskCreateSchema

HASH = "$2b$04$" + "a" * 53
OWNER = "(SELECT id FROM users WHERE email = 'owner@example.com')"


def signup(**fields: str) -> dict:
    return {"email": "a@example.com", "password": "correct horse", "name": "A", **fields}


def monthly_rule(length: int) -> str:
    """A valid rule exactly `length` characters long: days of the month,
    the first written 01 when that evens the length."""
    head = "FREQ=MONTHLY;BYMONTHDAY="
    rest = length - len(head)
    return head + ("01" if rest % 2 == 0 else "1") + ",1" * ((rest - 1) // 2)


# (validator at a length, or None; an INSERT of that length as $1; the limit;
# the constraint)
CASES = {
    "task title": (
        lambda n: TaskCreateSchema().load({"title": "t" * n}),
        f"INSERT INTO tasks (user_id, title) VALUES ({OWNER}, repeat('t', $1::integer))",
        TITLE_MAX,
        "tasks_title_check",
    ),
    "task description": (
        lambda n: TaskCreateSchema().load({"title": "t", "description": "d" * n}),
        "INSERT INTO tasks (user_id, title, description) "
        f"VALUES ({OWNER}, 't', repeat('d', $1::integer))",
        DESCRIPTION_MAX,
        "tasks_description_check",
    ),
    "task tag length": (
        lambda n: TaskCreateSchema().load({"title": "t", "tags": ["t" * n]}),
        f"INSERT INTO tasks (user_id, title, tags) VALUES ({OWNER}, 't', "
        "ARRAY[repeat('t', $1::integer)])",
        TAG_MAX,
        "tasks_tags_check",
    ),
    "task tag count": (
        lambda n: TaskCreateSchema().load({"title": "t", "tags": [f"t{i}" for i in range(n)]}),
        f"INSERT INTO tasks (user_id, title, tags) VALUES ({OWNER}, 't', "
        "ARRAY(SELECT 't' || g FROM generate_series(1, $1::integer) AS g))",
        TAGS_MAX,
        "tasks_tags_check",
    ),
    "task repeat rule": (
        lambda n: TaskCreateSchema().load(
            {"title": "t", "due_at": "2027-01-01T09:00:00Z", "repeat": monthly_rule(n)}
        ),
        "INSERT INTO tasks (user_id, title, due_at, repeat) "
        f"VALUES ({OWNER}, 't', now(), repeat('r', $1::integer))",
        REPEAT_MAX,
        "tasks_repeat_check",
    ),
    "user name": (
        lambda n: SignupSchema().load(signup(name="n" * n)),
        "INSERT INTO users (email, password_hash, name) "
        f"VALUES ('n' || $1::integer || '@example.com', '{HASH}', repeat('n', $1::integer))",
        NAME_MAX,
        "users_name_check",
    ),
    "user email": (
        lambda n: SignupSchema().load(signup(email="a" * (n - 12) + "@example.com")),
        "INSERT INTO users (email, password_hash, name) "
        f"VALUES (repeat('a', $1::integer - 12) || '@example.com', '{HASH}', 'A')",
        EMAIL_MAX,
        "users_email_check",
    ),
    # The verifier refuses a longer `sub` (tests/auth/test_better_auth_keys.py).
    "Better Auth subject": (
        None,
        "INSERT INTO users (auth_issuer, auth_subject, name) "
        "VALUES ('https://a.example', repeat('s', $1::integer), 'A')",
        SUBJECT_MAX,
        "users_auth_subject_check",
    ),
}


@pytest.fixture
async def conn(migrated_database):
    connection = await asyncpg.connect(migrated_database)
    await connection.execute(
        "INSERT INTO users (email, password_hash, name) VALUES ('owner@example.com', $1, 'O')",
        HASH,
    )
    yield connection
    await connection.close()


@pytest.mark.parametrize("what", CASES)
async def test_the_validator_and_the_database_agree_on_the_limit(conn, what):
    validate, insert, limit, constraint = CASES[what]
    if validate is not None:
        validate(limit)
        with pytest.raises(ValidationError):
            validate(limit + 1)
    await conn.execute(insert, limit)
    with pytest.raises(asyncpg.CheckViolationError) as info:
        await conn.execute(insert, limit + 1)
    assert info.value.constraint_name == constraint


def test_the_constraint_table_answers_each_check_with_its_validators_limit():
    # A CHECK the validator let through is a 422 that states the same limit.
    limits: dict[str, list[int]] = {}
    for _, _, limit, constraint in CASES.values():
        limits.setdefault(constraint, []).append(limit)
    for name, constraint in CONSTRAINTS.items():
        if constraint.field is not None:
            assert name in limits, f"{name} answers a field but no case tests its limit"
            for limit in limits[name]:
                assert str(limit) in constraint.message, name
