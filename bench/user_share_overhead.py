"""What DB_MAX_PER_USER adds to every query (service/db.py): reading the
acting user, taking and giving back one of their share; and what the auth
middleware adds to every request: setting and resetting that user. Pure
Python, no database: per operation, best of 5 runs.

    .venv/bin/python bench/user_share_overhead.py
"""

from __future__ import annotations

import sys
import timeit
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.db import USER_WAIT_SECONDS, UserShares
from service.keys import ACTING_USER

N = 1_000_000


def per_query(shares: UserShares) -> None:
    """The lines _acquire and _run add around a query, on the hot path."""
    user = ACTING_USER.get()
    if user is not None and not shares.try_take(user):
        raise AssertionError("the hot path never waits here")
    if user is not None:
        shares.give_back(user)


def per_request() -> None:
    """The lines the auth middleware adds around a handler."""
    token = ACTING_USER.set(USER)
    try:
        pass
    finally:
        ACTING_USER.reset(token)


USER = uuid.uuid4()


def best(stmt: object) -> float:
    return min(timeit.repeat(stmt, number=N, repeat=5)) / N * 1e9


def main() -> None:
    shares = UserShares(share=5, wait=USER_WAIT_SECONDS)
    busy = UserShares(share=5, wait=USER_WAIT_SECONDS)
    others = [uuid.uuid4() for _ in range(1000)]
    for other in others:  # a thousand other users holding connections meanwhile
        busy.try_take(other)
    print(f"per query, no user (sign-up, sign-in):  {best(lambda: per_query(shares)):6.0f} ns")
    token = ACTING_USER.set(USER)
    print(f"per query, signed-in user:              {best(lambda: per_query(shares)):6.0f} ns")
    print(f"per query, 1000 other users active:     {best(lambda: per_query(busy)):6.0f} ns")
    ACTING_USER.reset(token)
    print(f"per request, auth middleware set/reset: {best(per_request):6.0f} ns")
    print(f"(the empty call itself:                 {best(lambda: None):6.0f} ns)")


if __name__ == "__main__":
    main()
