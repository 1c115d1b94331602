"""Is a new password guessable (zxcvbn, with the account's email and name)?
NIST SP 800-63B: refuse guessable passwords, impose no composition rules."""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

# Score 2, at least 10^6 guesses, blocks the common and trivially guessable;
# sign-in limits and bcrypt do the rest.
MIN_SCORE = 2
# zxcvbn's time grows faster than linearly with length: it judges the start only.
ESTIMATED_CHARACTERS = 16
# The service's own name is as guessable as the user's ("context-specific words").
SERVICE_WORDS = ("todo", "todo-api", "todoapi")

_WORD_SPLIT = re.compile(r"[\W_]+")

SAME_AS_ACCOUNT = "The password must not be your email address or name."
TOO_GUESSABLE = "This password is too easy to guess."


def weak_password_reason(password: str, email: str = "", name: str = "") -> str | None:
    """Why `password` is refused for the account, or None. On the event loop
    only: zxcvbn swaps a module-level dictionary of user inputs."""
    email = email.strip().casefold()
    name = name.strip().casefold()
    local, _, domain = email.partition("@")
    if password.strip().casefold() in {email, local, name} - {""}:
        return SAME_AS_ACCOUNT
    # Whole and in parts ("ann.lee", "ann", "lee"), likeliest first, as zxcvbn ranks them.
    words = [email, local, name, *_WORD_SPLIT.split(f"{local} {name}"), domain, *SERVICE_WORDS]
    inputs = [w for w in dict.fromkeys(words) if w]
    result = zxcvbn(password[:ESTIMATED_CHARACTERS], user_inputs=inputs)
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    hints = [feedback.get("warning") or "", *feedback.get("suggestions", ())]
    return " ".join([TOO_GUESSABLE, *(h for h in hints if h)])


# A signing key (BETTER_AUTH_SECRET) must be random, not merely long: zxcvbn
# credits a random character with about one decimal digit, words far less.
MIN_SECRET_DIGITS_PER_CHARACTER = 0.84
MIN_SECRET_DISTINCT_CHARACTERS = 8
SECRET_ESTIMATED_CHARACTERS = 64  # zxcvbn's cost grows fast; random starts suffice


def guessable_secret_reason(secret: str) -> str | None:
    """Why `secret` is guessable as a signing key, or None."""
    if len(set(secret)) < MIN_SECRET_DISTINCT_CHARACTERS:
        return "too few distinct characters"
    if any(secret[p:] == secret[:-p] for p in range(1, len(secret) // 2 + 1)):
        return "a short pattern repeated"
    head = secret[:SECRET_ESTIMATED_CHARACTERS]
    if zxcvbn(head)["guesses_log10"] < MIN_SECRET_DIGITS_PER_CHARACTER * len(head):
        return "low estimated entropy: words, dates, sequences or keyboard runs"
    return None
