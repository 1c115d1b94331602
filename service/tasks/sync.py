"""Sync tokens for GET /api/tasks/changes (API.md "Sync"; docs/developing.md
"The change feed" says why nothing is skipped).

Every task and tombstone carries change_xid, the id of the transaction
that last wrote it. A page reads the caller's changes after a position in
(change_xid, id) order. A sync is a run of pages; its final token starts
the next run at the xmin of its first page's snapshot: every transaction
that snapshot did not see has an id at least that, whenever it commits.
A token also names the database that issued it and when its run began,
so that a token from another database, or older than CHANGES_RETENTION
(the tombstones it needs are gone), is refused with 410."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from service import errors, keys
from service.tasks.cursor import CursorCodec

_NIL = uuid.UUID(int=0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Position:
    """Where a page starts. `run_floor` is None at the start of a run (no
    token, or a finished sync's); within a run, the least snapshot xmin of
    its pages so far. `run_at`: when the run this token belongs to began
    (its first page's database time); None without a token."""

    after_xid: int
    after_id: uuid.UUID
    run_floor: int | None
    run_at: datetime | None
    deletions: bool  # a first sync has nothing to delete
    database_id: str | None


# No token: every task, from the start.
START = Position(0, _NIL, None, None, False, None)


# Tokens are signed for (LABEL, caller): a new token layout takes a new
# label, so tokens of the old one are a 400 and their clients sync afresh.
LABEL = "sync"


class SyncTokens:
    def __init__(self, codec: CursorCodec, retention: float) -> None:
        self._codec = codec
        self._retention = timedelta(seconds=retention)

    def read(self, token: str, user_id: uuid.UUID) -> Position:
        """The position a token names; 400 if this service did not issue it to this caller."""
        data = self._codec.verify(token, (LABEL, user_id))
        if data is None:
            raise errors.SyncTokenInvalid()
        after_xid, after_id, run_floor, run_at, deletions, database_id = data
        return Position(
            after_xid,
            uuid.UUID(after_id),
            run_floor,
            _EPOCH + run_at * _MICROSECOND,
            deletions,
            database_id,
        )

    def check(self, since: Position, snapshot: Any) -> None:
        """410 for a token this database cannot serve: another database's
        (a restore, a Neon branch), one from ahead of it (a backup restored
        in place), or one older than CHANGES_RETENTION."""
        if since.database_id is None:
            return
        if since.database_id != snapshot["database_id"]:
            raise errors.SyncTokenExpired("This sync token is from another database.")
        if since.after_xid > snapshot["snapshot_xmax"]:
            raise errors.SyncTokenExpired("This sync token is from a later state of the database.")
        if snapshot["read_at"] - since.run_at > self._retention:
            raise errors.SyncTokenExpired("This sync token is older than the changes kept.")

    def next(
        self, since: Position, snapshot: Any, last: Any, more: bool, user_id: uuid.UUID
    ) -> str:
        """The token after this page: the rest of this run while `more`, else
        the start of the next run, from the run's floor."""
        floor = snapshot["snapshot_xmin"]
        if since.run_floor is not None:
            floor = min(floor, since.run_floor)
        run_at = snapshot["read_at"] if since.run_floor is None else since.run_at
        if more:
            position = [last["change_xid"], str(last["id"]), floor, since.deletions]
        else:
            position = [floor, str(_NIL), None, True]
        after_xid, after_id, run_floor, deletions = position
        at = (run_at - _EPOCH) // _MICROSECOND
        data = [after_xid, after_id, run_floor, at, deletions, snapshot["database_id"]]
        return self._codec.sign(data, (LABEL, user_id))


@dataclass(frozen=True)
class Page:
    """One answer of the feed: its rows (change_xid, id, deleted, rendered:
    the task's or the tombstone's JSON) in change order, and the token after them."""

    changes: list[Any]
    more: bool
    next: str


async def read_page(app: web.Application, user_id: uuid.UUID, since: Position, limit: int) -> Page:
    """The caller's changes after `since`, at most `limit` (0: none, only the
    token for what follows); 401 if the account is gone, 410 if this
    database cannot serve the token."""
    db = app[keys.DB]
    tokens = app[keys.SYNC_TOKENS]
    rows = await db.many(
        "list_changes",
        user_id=user_id,
        after_xid=since.after_xid,
        after_id=since.after_id,
        limit=limit + 1 if limit else 0,
        deletions=since.deletions,
    )
    snapshot = rows[0]
    if not snapshot["account_exists"]:
        raise errors.AccountGone()
    tokens.check(since, snapshot)
    changes = [row for row in rows if row["change_xid"] is not None]
    more = len(changes) > limit
    changes = changes[:limit]
    last = changes[-1] if changes else None
    return Page(changes, more, tokens.next(since, snapshot, last, more, user_id))
