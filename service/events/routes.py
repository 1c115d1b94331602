"""GET /api/tasks/events (and under /api/{user_id}/): the caller's task
changes as server-sent events, `task` and `deleted`, each batch's last
event carrying the sync token after it as its `id`, so `Last-Event-ID` (or
GET /api/tasks/changes?since=) takes over from any event with nothing missed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from service import errors, keys, metrics
from service.auth.tokens import bearer_token
from service.docs.operation import DATABASE, Answer, operation
from service.events.hub import Hub, Stream, hub_ctx
from service.tasks.routes import MOUNTS, _caller
from service.tasks.sync import START, Position, SyncTokens, read_page

PAGE = 100
# A reader that takes no more events for this long is dropped, not buffered
# for (the kernel also aborts a connection whose data goes unacknowledged).
SEND_TIMEOUT = 10
# Milliseconds a client waits before reconnecting after a shutdown ends its stream.
RECONNECT_MS = 1000
# How often a stream asks whether its token still holds (signed out, password
# changed, account deleted, expired): the stream ends within this and the
# token service's own window. Streams sharing a token share the look.
REVALIDATE_SECONDS = 1.0


def setup(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    app[keys.EVENTS] = Hub(app[keys.DB], settings.events_per_user, settings.events_per_process)
    app.cleanup_ctx.append(hub_ctx)
    for prefix in (mount.prefix for mount in MOUNTS):
        app.router.add_get(prefix + "/events", stream_events, allow_head=False)


@operation(
    description=(
        "Stays open: an `event: task` (data: the task) for each task of the caller "
        "created or changed, an `event: deleted` (data: `{id, deleted_at}`) for each "
        "deleted, a comment line at least every EVENTS_HEARTBEAT. The last event of "
        "each batch has an `id`, a sync token: send it back as `Last-Event-ID` (the "
        "browser does) to resume with nothing missed, or pass it to "
        "GET /api/tasks/changes as since. Events may repeat (apply by id). The "
        "stream ends with `event: end` (data: why) after sign-out, a password "
        "change, the account's deletion, the token's expiry, or when the account "
        "opens more than EVENTS_PER_USER streams (this one was the oldest): close "
        "the EventSource then rather than let it reconnect. At shutdown it ends "
        "with `event: reconnect` and a `retry:`: reconnect, to another replica."
    ),
    mounts=MOUNTS,
    parameters=(
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "The id of the last event received: resume after it.",
            "schema": {"type": "string", "maxLength": 512},
        },
    ),
    ok={200: Answer("The event stream.", {"type": "string"}, content_type="text/event-stream")},
    problems=(400, 410, DATABASE),
    notes={
        400: "Last-Event-ID is not an event id of this caller's "
        "(type `/problems/sync-token-invalid`).",
        410: "Last-Event-ID can no longer be served (type `/problems/sync-token-expired`): "
        "sync with GET /api/tasks/changes from the start, then open the stream.",
        503: "The database is unreachable, or this process serves EVENTS_PER_PROCESS "
        "streams (type `/problems/busy`); retry after Retry-After seconds.",
    },
)
async def stream_events(request: web.Request) -> web.StreamResponse:
    """Stream the caller's task changes as server-sent events."""
    user_id = _caller(request)
    tokens, hub = request.app[keys.SYNC_TOKENS], request.app[keys.EVENTS]
    last = request.headers.get("Last-Event-ID")
    if last is not None and len(last) > 512:
        raise errors.SyncTokenInvalid()
    since = tokens.read(last, user_id) if last else None
    if since is None:  # from now on
        since = tokens.read((await read_page(request.app, user_id, START, 0)).next, user_id)
    else:  # answers 410 before the stream starts
        await read_page(request.app, user_id, since, 0)
    stream = hub.open(user_id)
    try:
        settings = request.app[keys.SETTINGS]
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        async with sse_response(
            request,
            headers=headers,
            ping_interval=settings.events_heartbeat,
            send_timeout=SEND_TIMEOUT,
        ) as resp:
            await _follow(request, resp, stream, tokens, since, user_id)
            if stream.closing == "ended":
                await resp.send(stream.why or "", event="end")
            elif stream.closing == "shutdown":
                await resp.send("", event="reconnect", retry=RECONNECT_MS)
    finally:
        hub.release(stream)
    return resp


async def _follow(
    request: web.Request,
    resp: Any,
    stream: Stream,
    tokens: SyncTokens,
    since: Position,
    user_id: uuid.UUID,
) -> None:
    """Send each change after `since` until the stream closes, the client
    goes, or the token stops holding."""
    sent: dict[uuid.UUID, int] = {}  # task id -> the change_xid sent, for repeats
    gone = asyncio.ensure_future(resp.wait())  # the client went, or the pings failed
    try:
        while stream.closing is None and not gone.done():
            page = await read_page(request.app, user_id, since, PAGE)
            fresh = [row for row in page.changes if sent.get(row["id"]) != row["change_xid"]]
            for n, row in enumerate(fresh):
                event = "deleted" if row["deleted"] else "task"
                last = n == len(fresh) - 1
                await resp.send(row["rendered"], event=event, id=page.next if last else None)
                metrics.EVENTS_SENT.labels(event).inc()
                sent[row["id"]] = row["change_xid"]
            since = tokens.read(page.next, user_id)
            if page.more:
                continue
            # What a later read can return again is at or past the floor.
            sent = {k: v for k, v in sent.items() if v >= since.after_xid}
            woken = asyncio.ensure_future(stream.wake.wait())
            await asyncio.wait(
                (woken, gone), timeout=REVALIDATE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            woken.cancel()
            stream.wake.clear()
            await _still_holds(request, stream)
    finally:
        gone.cancel()


async def _still_holds(request: web.Request, stream: Stream) -> None:
    """Close the stream ("ended") once its token is refused."""
    tokens = request.app[keys.TOKENS]
    token = bearer_token(request)
    try:
        if tokens.cached(token) is None:
            await tokens.authenticate(token)
    except errors.Unauthorized as exc:
        stream.why = exc.detail
        stream.close("ended")
