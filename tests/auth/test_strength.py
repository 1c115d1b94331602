"""The password rule itself (service/auth/strength.py), as sign-up and a
password change call it."""

from __future__ import annotations

import pytest

from service.auth.strength import ESTIMATED_CHARACTERS, SAME_AS_ACCOUNT, weak_password_reason


@pytest.mark.parametrize(
    "password",
    ["password", "12345678", "aaaaaaaa", " " * 8, "qwertyuiop", "abcdefgh", "iloveyou", "01011990"],
)
def test_common_and_trivial_passwords_are_refused(password):
    reason = weak_password_reason(password)
    assert reason is not None
    assert reason.startswith("This password is too easy to guess.")


@pytest.mark.parametrize(
    "password",
    ["bob.marley@example.org", "BOB.MARLEY@EXAMPLE.ORG ", "bob.marley", "Robert Marley"],
)
def test_the_email_its_local_part_and_the_name_are_refused(password):
    assert weak_password_reason(password, "bob.marley@example.org", "Robert Marley") == (
        SAME_AS_ACCOUNT
    )


@pytest.mark.parametrize("password", ["zephyrinequoll", "quollworth", "Zephyrine1", "zephyrine.q"])
def test_passwords_built_on_the_account_are_refused(password):
    email, name = "zephyrine.quoll@example.org", "Zephyrine Quollworth"
    assert weak_password_reason(password) is None  # uncommon on its own
    assert weak_password_reason(password, email, name) is not None


@pytest.mark.parametrize("password", ["todo1234", "todo-api", "todolist"])
def test_passwords_built_on_the_service_name_are_refused(password):
    assert weak_password_reason(password) is not None


@pytest.mark.parametrize(
    "password",
    [
        "correct horse",
        "fjords42",
        "Tr0ub4dor&3",
        "plum tree at dusk",
        "Zoë fjords 🌱",
        "é" * 2 + "k9$Lm",
    ],
)
def test_passwords_that_are_not_guessable_pass_without_composition_rules(password):
    assert weak_password_reason(password, "bob.marley@example.org", "Robert Marley") is None


def test_a_long_password_is_judged_by_a_bounded_start():
    # The estimator's cost grows faster than linearly with length, so it sees
    # only the first characters; a guessable start is refused at any length.
    assert ESTIMATED_CHARACTERS >= 8
    assert weak_password_reason("a" * 1000) is not None
    assert weak_password_reason("password" * 125) is not None
    assert weak_password_reason("correct horse battery staple " * 30) is None
