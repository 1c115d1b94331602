"""schemathesis hooks for `make fuzz` (fuzz/run.py names this module in
SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

from service.tasks.idempotency import HEADER, parse_key

_CASES = itertools.count()


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """Each well-formed Idempotency-Key made the case's own: hypothesis
    shrinks keys to a few short values, and a key sent again with another
    request is a 422 by contract (tests/tasks/test_idempotency.py), which
    left most keyed writes unexplored. Malformed keys go as generated."""
    value = (case.headers or {}).get(HEADER)
    key = None if value is None else parse_key(value)
    if key is None:
        return
    unique = f"{key[:240]}~{next(_CASES)}"
    quoted = len(value) >= 2 and value[0] == value[-1] == '"'
    case.headers[HEADER] = f'"{unique}"' if quoted else unique
