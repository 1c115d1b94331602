"""Every open event stream of this process (API.md "Live events"), and what
wakes them: a poll of the change feed for all of them together, every
POLL_SECONDS, one query. A woken stream reads its own feed from its token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from service import errors, keys, metrics

if TYPE_CHECKING:
    from service.db import Database

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
REPLACED = (
    "This account opened more event streams than EVENTS_PER_USER allows; this, "
    "its oldest, is closed. Close this EventSource rather than let it reconnect."
)


class Stream:
    """One open stream: woken when its account's tasks may have changed,
    or closed (`closing` says why)."""

    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.wake = asyncio.Event()
        self.closing: str | None = None
        self.why: str | None = None  # what ended it, for the client

    def close(self, why: str) -> None:
        self.closing = why
        self.wake.set()


class Hub:
    def __init__(self, db: Database, per_user: int, per_process: int) -> None:
        self._db = db
        self._per_user = per_user
        self._per_process = per_process
        self._streams: dict[uuid.UUID, list[Stream]] = {}
        self._count = 0
        # The previous poll's snapshot: (xmax, running ids); None: none yet.
        self._seen: tuple[int, list[int]] | None = None
        self.source = "poll"

    @property
    def open_streams(self) -> int:
        return self._count

    def open(self, user_id: uuid.UUID) -> Stream:
        """A new stream for the account: its oldest closes past EVENTS_PER_USER;
        503 past EVENTS_PER_PROCESS."""
        streams = self._streams.get(user_id, [])
        if len(streams) >= self._per_user:
            oldest = streams[0]
            oldest.why = REPLACED
            oldest.close("ended")
            self.release(oldest)
        if self._count >= self._per_process:
            raise errors.ServiceBusy("This process serves as many event streams as it may.")
        stream = Stream(user_id)
        self._streams.setdefault(user_id, []).append(stream)
        self._count += 1
        metrics.EVENT_STREAMS.inc()
        return stream

    def release(self, stream: Stream) -> None:
        """Forget a stream (idempotent), closing it if it is still open."""
        streams = self._streams.get(stream.user_id, [])
        if stream in streams:
            streams.remove(stream)
            self._count -= 1
            metrics.EVENT_STREAMS.dec()
            if not streams:
                del self._streams[stream.user_id]
        if stream.closing is None:
            stream.close("released")

    def close_all(self, why: str) -> None:
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.close(why)

    async def poll_once(self) -> None:
        """Wake the streams whose accounts changed since the previous poll."""
        if not self._streams:
            self._seen = None
            return
        users = list(self._streams)
        if self._seen is None:
            # The first poll since streams opened: each re-reads once, which
            # covers whatever changed between its first read and now.
            changed = users
            row = await self._db.one(
                "changed_accounts", user_ids=[], seen_xmax=0, seen_floor=0, seen_running=[]
            )
        else:
            xmax, running = self._seen
            row = await self._db.one(
                "changed_accounts",
                user_ids=users,
                seen_xmax=xmax,
                seen_floor=min(running, default=xmax),
                seen_running=running,
            )
            changed = row["changed"]
        self._seen = (row["snapshot_xmax"], list(row["snapshot_running"]))
        for user_id in changed:
            for stream in self._streams.get(user_id, []):
                stream.wake.set()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.poll_once()
            except (errors.Problem, OSError) as exc:  # the database is away: try again
                log.warning("event poll failed: %s", exc)
                self._seen = None


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """Poll while the app runs; at shutdown, end every stream at once (with a
    reconnect hint) rather than let draining wait on them."""
    hub: Hub = app[keys.EVENTS]
    task = asyncio.create_task(hub._poll())

    async def end_streams(_app: web.Application) -> None:
        hub.close_all("shutdown")

    app.on_shutdown.append(end_streams)
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
