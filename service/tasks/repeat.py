"""Repeating tasks: API.md's RRULE subset and, by dateutil's rrule anchored on
the due_at (in UTC), the next occurrence. COUNT is how many times the task is
still due, this one included: each completion stores one less."""

from __future__ import annotations

import datetime as calendar
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace

import dateutil.rrule
from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr
from marshmallow import ValidationError

REPEAT_MAX = 200  # tasks_repeat_check
FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL")
INTERVAL_MAX = 1000
COUNT_MAX = 1000
_WEEKDAY = re.compile(r"([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_MONTHDAY = re.compile(r"[+-]?\d{1,2}")
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})Z)?")
# How far ahead an occurrence is looked for: HORIZON_PERIODS of the rule's
# periods, at least HORIZON_YEARS (every weekday falls on every date in them);
# a rule with no date in that span counts as never occurring.
HORIZON_PERIODS = 100
HORIZON_YEARS = 28
_PERIOD = {"DAILY": "days", "WEEKLY": "weeks", "MONTHLY": "months", "YEARLY": "years"}
# How far an ordinal BYDAY reaches: the 5th weekday of a month, the 53rd of a year.
_ORDINAL_MAX = {"MONTHLY": 5, "YEARLY": 53}


def canonical(value: str) -> str:
    """The rule in one spelling (upper case, UNTIL in UTC with a time), or
    ValidationError saying what is wrong with it."""
    if len(value) > REPEAT_MAX:
        raise ValidationError(f"Must be at most {REPEAT_MAX} characters.")
    parts: dict[str, str] = {}
    for item in value.strip().upper().removeprefix("RRULE:").split(";"):
        key, eq, val = item.partition("=")
        if not eq or not val:
            raise ValidationError(f"{item!r} is not NAME=VALUE.")
        if key not in PARTS:
            raise ValidationError(f"{key} is not supported; use {', '.join(PARTS)}.")
        if key in parts:
            raise ValidationError(f"{key} is given twice.")
        parts[key] = val
    freq = parts.get("FREQ")
    if freq not in FREQS:
        raise ValidationError(f"FREQ must be one of {', '.join(FREQS)}.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationError("Give COUNT or UNTIL, not both.")
    for key, high in (("INTERVAL", INTERVAL_MAX), ("COUNT", COUNT_MAX)):
        if key in parts and not (parts[key].isdigit() and 1 <= int(parts[key]) <= high):
            raise ValidationError(f"{key} must be a whole number from 1 to {high}.")
    if "BYDAY" in parts:
        _check_days(parts["BYDAY"], freq)
    if "BYMONTHDAY" in parts:
        for day in parts["BYMONTHDAY"].split(","):
            if not _MONTHDAY.fullmatch(day) or not 1 <= abs(int(day)) <= 31:
                raise ValidationError("BYMONTHDAY takes days 1 to 31 or -31 to -1.")
    if "UNTIL" in parts:
        parts["UNTIL"] = _until(parts["UNTIL"])
    return ";".join(f"{key}={val}" for key, val in parts.items())


def _check_days(days: str, freq: str) -> None:
    for day in days.split(","):
        match = _WEEKDAY.fullmatch(day)
        if match is None:
            raise ValidationError("BYDAY takes MO, TU, WE, TH, FR, SA, SU, as in MO,WE or -1FR.")
        if match[2] is not None:
            high = _ORDINAL_MAX.get(freq)
            if high is None:
                raise ValidationError("A numbered BYDAY (like 1MO) needs FREQ=MONTHLY or YEARLY.")
            if not 1 <= int(match[2]) <= high:
                raise ValidationError(f"With FREQ={freq}, a BYDAY number is 1 to {high}.")


def _until(value: str) -> str:
    match = _UNTIL.fullmatch(value)
    if match is None:
        raise ValidationError("UNTIL is a date (20271231) or a UTC time (20271231T170000Z).")
    try:
        moment = datetime.strptime(match[1] + (match[2] or "235959"), "%Y%m%d%H%M%S")
    except ValueError:
        raise ValidationError("UNTIL is not a real date.") from None
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _last_year(value: str, due_at: datetime) -> int:
    parts = dict(p.split("=", 1) for p in value.split(";"))
    steps = HORIZON_PERIODS * int(parts.get("INTERVAL", "1"))
    try:
        year = (due_at + relativedelta(**{_PERIOD[parts["FREQ"]]: steps})).year
    except (OverflowError, ValueError):  # past year 9999
        return calendar.MAXYEAR
    return min(max(year, due_at.year + HORIZON_YEARS), calendar.MAXYEAR)


@contextmanager
def _searching_until(year: int) -> Iterator[None]:
    """dateutil searches a rule that never occurs up to datetime.MAXYEAR: for one
    search (no await in it), its `datetime` global has a nearer bound."""
    real = dateutil.rrule.datetime
    dateutil.rrule.datetime = SimpleNamespace(**{**vars(real), "MAXYEAR": year})
    try:
        yield
    finally:
        dateutil.rrule.datetime = real


def _after(value: str, due_at: datetime, inc: bool) -> datetime | None:
    # Without COUNT: dateutil's would count from DTSTART, which every completion moves.
    rule = ";".join(p for p in value.split(";") if not p.startswith("COUNT="))
    with _searching_until(_last_year(value, due_at)):
        return rrulestr(rule, dtstart=due_at.astimezone(UTC)).after(due_at, inc=inc)


def check_occurs(value: str, due_at: datetime | None) -> None:
    """ValidationError unless the rule yields an occurrence at or after due_at
    (one whose UNTIL is past, or whose days never come, repeats nothing)."""
    if due_at is None:
        raise ValidationError("A repeating task needs a due_at.")
    if _after(value, due_at, inc=True) is None:
        raise ValidationError(
            f"This rule yields no date in the {HORIZON_PERIODS} periods (and at least "
            f"{HORIZON_YEARS} years) from the task's due_at."
        )


def advance(value: str, due_at: datetime) -> tuple[datetime, str] | None:
    """The next due_at after this one and the rule to store with it, or
    None when the rule has no next occurrence (the task then completes)."""
    parts = dict(p.split("=", 1) for p in value.split(";"))
    count = int(parts.get("COUNT", "0"))
    if count == 1:
        return None
    following = _after(value, due_at, inc=False)
    if following is None:
        return None
    if count:
        parts["COUNT"] = str(count - 1)
    return following, ";".join(f"{k}={v}" for k, v in parts.items())
