"""The task routes, under /api/tasks and, for the frontend's own contract,
under /api/{user_id}/tasks. Every query filters by the caller's id, so
another user's task is a 404 exactly like a missing one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Any, NoReturn

import orjson
from aiohttp import web
from marshmallow import Schema, ValidationError

from service import constraints, errors, keys
from service.docs.operation import DATABASE, JSON_BODY, Answer, Mount, operation
from service.jsonio import has_body, json_response, read_json
from service.middlewares import MAX_LIST_HEADER, public_url
from service.tasks import repeat as rrules
from service.tasks import schemas
from service.tasks.conditional import etag, if_match_versions, none_match
from service.tasks.cursor import CursorCodec
from service.tasks.idempotency import HEADER as IDEMPOTENCY_KEY
from service.tasks.idempotency import idempotent
from service.tasks.sync import START, SyncTokens, read_page

CREATE = schemas.TaskCreateSchema()
REPLACE = schemas.TaskReplaceSchema()
PATCH = schemas.TaskPatchSchema()
COMPLETE = schemas.TaskCompleteSchema()
LIST_QUERY = schemas.TaskListQuerySchema()
CHANGES_QUERY = schemas.ChangesQuerySchema()

# A browser may keep a task, per user, but must revalidate it (its ETag).
PRIVATE = {"Cache-Control": "private, no-cache", "Vary": "Authorization"}
# Lists and counts have no validator: no-store, the default (service.middlewares).
PER_USER = {"Vary": "Authorization"}

_TIMESTAMPS = frozenset({"created_at", "updated_at", "due_at"})
# Three letters or digits in a row always make a trigram; a q without any
# may have none, and a GIN search for no trigram reads the whole column.
_INDEXED_Q = re.compile(r"[^\W_]{3}")


# What the OpenAPI document says of every task operation.
_NOTES = {
    404: "No such task for this user (or the id is not a UUID).",
    412: "If-Match does not match the task's current ETag.",
    409: "Completing a repeating task met other writes to it three times running; retry.",
}


def _parameter(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


_USER_ID = _parameter(
    "user_id",
    "path",
    "The caller's own user id: their id here (a UUID) or, signed in through Better "
    "Auth, their Better Auth user id (`session.user.id`, the token's `sub`); any "
    "other is a 403.",
    type="string",
    minLength=1,
    maxLength=255,
)
# The plain routes first: /api/tasks/{id} must win over /api/{user_id}/tasks.
MOUNTS = (
    Mount("/api/tasks", tag="tasks", notes=_NOTES),
    Mount(
        "/api/{user_id}/tasks",
        tag="tasks (by user id)",
        operation_suffix="ByUser",
        parameters=(_USER_ID,),
        problems=(403,),  # _caller
        notes={
            **_NOTES,
            403: "The path names another user: neither the caller's id nor their Better Auth id.",
        },
    ),
)
_TASK_ID = _parameter("id", "path", "The task's id.", type="string", format="uuid")


def _etags(name: str, description: str) -> dict[str, Any]:
    """A conditional header: a list of ETags, refused over MAX_LIST_HEADER."""
    return _parameter(name, "header", description, type="string", maxLength=MAX_LIST_HEADER)


_IF_MATCH = _etags(
    "If-Match", "Only write if the task's ETag is one of these (strong comparison) or `*`."
)
_IDEMPOTENCY = _parameter(
    IDEMPOTENCY_KEY,
    "header",
    "1 to 255 printable ASCII characters, bare or quoted. A retry with the same "
    "key and request within IDEMPOTENCY_TTL gets the first answer again, with "
    "`Idempotent-Replayed: true` (only answers that would be the same again are "
    "kept: 2xx, 400, 413, 415, 422); checked before If-Match. A new UUID per user "
    "action, e.g. `3f1c0a52-9d8e-4c1b-a7e2-5b0f6d4c9e21`, reused by its retries.",
    type="string",
    minLength=1,
    maxLength=257,
    # Bare, or in quotes; "" (an empty quoted key) is neither.
    pattern=r'^(?:"[ -~]{1,255}"|(?!"[ -~]*"$)[ -~]{1,255})$',
)
_IDEMPOTENT_NOTES = {
    409: (
        "A request with this Idempotency-Key is still being answered (type "
        "`/problems/conflict`); retry when it is done."
    ),
    422: (
        'Invalid input; `errors` says which field and why. `errors["Idempotency-Key"]`: '
        "the key was sent before with another request."
    ),
}
_IF_NONE_MATCH = _etags(
    "If-None-Match", "Answer 304 if the task's ETag is one of these (weak comparison) or `*`."
)


def setup(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    app[keys.CURSORS] = CursorCodec(settings.auth_secret)
    app[keys.SYNC_TOKENS] = SyncTokens(app[keys.CURSORS], settings.changes_retention)
    app.router.add_get("/api/tasks/summary", task_summary, allow_head=False)
    app.router.add_get("/api/tags", list_tags, allow_head=False)
    # {id} is never "summary", "changes" or "events": PUT /api/tasks/summary
    # is a 405, not a 404.
    task = "/{id:(?!(?:summary|changes|events)$)[^{}/]+}"
    for prefix in (mount.prefix for mount in MOUNTS):
        app.router.add_get(prefix + "/changes", list_changes, allow_head=False)
        app.router.add_post(prefix, create_task)
        app.router.add_get(prefix, list_tasks, allow_head=False)
        app.router.add_get(prefix + task, get_task, allow_head=False)
        app.router.add_put(prefix + task, replace_task)
        app.router.add_patch(prefix + task, patch_task)
        app.router.add_delete(prefix + task, delete_task)
        app.router.add_patch(prefix + "/{id}/complete", complete_task)


def _caller(request: web.Request) -> uuid.UUID:
    """The caller's user id. Under /api/{user_id}/... the path must name the
    caller: their id here, or their Better Auth user id."""
    user_id = request[keys.USER_ID]
    in_path = request.match_info.get("user_id")
    if in_path is not None and in_path != request.get(keys.AUTH_SUBJECT):
        try:
            same = uuid.UUID(in_path) == user_id
        except ValueError:
            same = False
        if not same:
            raise errors.Forbidden("This path names another user; use your own id or /api/tasks.")
    return user_id


def _query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The query's parameters, each given at most once, loaded by `schema`."""
    repeated = sorted({k for k in request.query if len(request.query.getall(k)) > 1})
    if repeated:
        raise errors.Unprocessable({k: ["Give this parameter at most once."] for k in repeated})
    return schema.load(dict(request.query))


async def _account_exists(request: web.Request, user_id: uuid.UUID) -> None:
    """Nothing found: 401 if the token's account is gone (only empty answers pay)."""
    if await request.app[keys.DB].one("get_user_by_id", id=user_id) is None:
        raise errors.AccountGone()


async def _not_found(request: web.Request, user_id: uuid.UUID) -> NoReturn:
    await _account_exists(request, user_id)
    raise errors.NotFound("No such task.", slug="task-not-found", title="Task not found")


async def _task(request: web.Request) -> tuple[uuid.UUID, uuid.UUID]:
    """The caller's id and the path's task id; one that is not a UUID is a 404."""
    user_id = _caller(request)
    try:
        return user_id, uuid.UUID(request.match_info["id"])
    except ValueError:
        await _not_found(request, user_id)


def _task_response(row: Any, *, status: int = 200, headers: dict[str, str] | None = None):
    return json_response(
        schemas.task_json(row),
        status=status,
        headers={"ETag": etag(row["version"]), **(headers or {})},
    )


async def _written(request: web.Request, row: Any, task_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    """A conditional write matched no row: 412 if the task is there, else 404."""
    if row is not None:
        return row
    if await request.app[keys.DB].val("get_task_version", id=task_id, user_id=user_id) is not None:
        raise errors.PreconditionFailed(
            "The task changed since you read it (If-Match does not match its ETag); "
            "fetch it again and reapply your change."
        )
    await _not_found(request, user_id)


@operation(
    mounts=MOUNTS,
    body=schemas.TaskCreateSchema,
    parameters=(_IDEMPOTENCY,),
    ok={
        201: Answer(
            "The new task (or, replayed, the first answer to this Idempotency-Key).",
            schemas.TaskSchema,
            headers=("Location", "ETag", "Idempotent-Replayed"),
        )
    },
    problems=(*JSON_BODY, 403, 409, *constraints.statuses("create_task"), DATABASE),
    notes={
        **_IDEMPOTENT_NOTES,
        403: (
            "The account already owns MAX_TASKS_PER_USER tasks (type "
            "`/problems/task-limit-reached`; delete some first), or, under "
            "/api/{user_id}/tasks, the path names another user."
        ),
    },
)
@idempotent
async def create_task(request: web.Request) -> web.Response:
    """Create a task."""
    user_id = _caller(request)
    data = CREATE.load(await read_json(request))
    db = request.app[keys.DB]
    limit = request.app[keys.SETTINGS].max_tasks_per_user
    task = {**data, "user_id": user_id, "max_tasks": limit}
    if task["completed"] and task["repeat"] is not None:
        # Created done, a repeating task is due at its next occurrence instead.
        task.update(_completion(task) or {})
    row = await db.val("create_task", **task)
    if row is None:
        await _account_exists(request, user_id)
        raise errors.TaskLimitReached(limit)
    location = public_url(request, f"/api/tasks/{row['id']}")
    return _task_response(row, status=201, headers={"Location": location})


@operation(
    mounts=MOUNTS,
    parameters=(_TASK_ID, _IF_NONE_MATCH),
    ok={
        200: Answer("The task.", schemas.TaskSchema, headers=("ETag",)),
        304: Answer("Not modified: If-None-Match names the current ETag.", headers=("ETag",)),
    },
    problems=(404, DATABASE),
)
async def get_task(request: web.Request) -> web.StreamResponse:
    """Get one task."""
    user_id, task_id = await _task(request)
    row = await request.app[keys.DB].val("get_task", id=task_id, user_id=user_id)
    if row is None:
        await _not_found(request, user_id)
    if none_match(request, row["version"]):
        return web.Response(status=304, headers={"ETag": etag(row["version"]), **PRIVATE})
    return _task_response(row, headers=PRIVATE)


# PUT, PATCH and PATCH .../complete.
_UPDATE = {
    "mounts": MOUNTS,
    "parameters": (_TASK_ID, _IF_MATCH),
    "ok": {200: Answer("The updated task.", schemas.TaskSchema, headers=("ETag",))},
    "problems": (*JSON_BODY, 404, 409, 412, DATABASE),
}


# PATCH and its completion are not idempotent: they take Idempotency-Key.
_IDEMPOTENT_UPDATE = {
    **_UPDATE,
    "parameters": (*_UPDATE["parameters"], _IDEMPOTENCY),
    "ok": {
        200: Answer(
            "The updated task (or, replayed, the first answer to this Idempotency-Key).",
            schemas.TaskSchema,
            headers=("ETag", "Idempotent-Replayed"),
        )
    },
    "notes": {
        **_IDEMPOTENT_NOTES,
        409: (
            "Completing a repeating task met other writes to it three times running, "
            "or a request with this Idempotency-Key is still being answered; retry."
        ),
    },
}


@operation(body=schemas.TaskReplaceSchema, **_UPDATE)
async def replace_task(request: web.Request) -> web.Response:
    """Replace a task's fields (title required; omitted fields keep their value)."""
    return await _update(request, REPLACE)


@operation(body=schemas.TaskPatchSchema, **_IDEMPOTENT_UPDATE)
@idempotent
async def patch_task(request: web.Request) -> web.Response:
    """Change some of a task's fields (at least one)."""
    return await _update(request, PATCH)


async def _update(request: web.Request, schema: Schema) -> web.Response:
    """PUT and PATCH: the fields sent, under If-Match."""
    user_id, task_id = await _task(request)
    data = schema.load(await read_json(request))
    if_match = if_match_versions(request)
    if "repeat" in data or "due_at" in data:
        await _check_repeat(request, data, task_id, user_id)
    row = await _completing(
        request,
        lambda: _run_update(request, data, task_id, user_id, if_match),
        data,
        task_id,
        user_id,
        if_match,
    )
    return _task_response(await _written(request, row, task_id, user_id))


async def _run_update(
    request: web.Request,
    data: dict[str, Any],
    task_id: uuid.UUID,
    user_id: uuid.UUID,
    if_match: list[int] | None,
    repeat_checked: bool = False,
) -> Any:
    return await request.app[keys.DB].val(
        "update_task",
        id=task_id,
        user_id=user_id,
        if_match=if_match,
        repeat_checked=repeat_checked,
        **{name: data.get(name) for name in schemas.PATCHABLE},
        **{f"{name}_sent": name in data for name in schemas.NULLABLE},
    )


async def _check_repeat(
    request: web.Request, data: dict[str, Any], task_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """A rule and a due_at that will be stored together must yield a date:
    what was not sent is read from the task (only these writes pay)."""
    if "repeat" in data and "due_at" in data:
        effective = data
    else:
        row = await request.app[keys.DB].val("get_task", id=task_id, user_id=user_id)
        if row is None:
            return  # the update answers 404
        effective = {"repeat": row["repeat"], "due_at": row["due_at"], **data}
    if effective["repeat"] is not None:
        field = "repeat" if "repeat" in data else "due_at"
        try:
            rrules.check_occurs(effective["repeat"], effective["due_at"])
        except ValidationError as exc:
            raise errors.Unprocessable({field: exc.messages}) from None


def _completion(task: Any) -> dict[str, Any] | None:
    """Completing a repeating task: still open, due at the next occurrence,
    remind_at moved as much; None when no occurrence is left (it completes)."""
    following = rrules.advance(task["repeat"], task["due_at"])
    if following is None:
        return None
    due_at, rule = following
    remind_at = task["remind_at"]
    try:
        remind_at = None if remind_at is None else remind_at + (due_at - task["due_at"])
    except OverflowError:  # moved past year 9999: no occurrence it can keep
        return None
    return {"completed": False, "due_at": due_at, "remind_at": remind_at, "repeat": rule}


async def _completing(
    request: web.Request,
    write: Callable[[], Awaitable[Any]],
    data: dict[str, Any],
    task_id: uuid.UUID,
    user_id: uuid.UUID,
    if_match: list[int] | None,
) -> Any:
    """Run `write`, the change as sent. It writes nothing when the task is
    missing, If-Match fails, or it would complete an open repeating task:
    then read the task, and for the last write its next occurrence on the
    version read. Other writes may change the task in between (complete it,
    drop its rule): then `write` runs again. None: 404 or 412 (_written)."""
    db = request.app[keys.DB]
    for _ in range(3):
        row = await write()
        if row is not None:
            return row
        row = await db.val("get_task", id=task_id, user_id=user_id)
        if row is None or (if_match is not None and row["version"] not in if_match):
            return None
        task = {**dict(row), **data}
        if row["completed"] or not task.get("completed") or task["repeat"] is None:
            continue  # not, or no longer, completing an open repeating task
        next_time = {**data, **(_completion(task) or {})}
        updated = await _run_update(
            request, next_time, task_id, user_id, [row["version"]], repeat_checked=True
        )
        if updated is not None:
            return updated
    raise errors.Conflict("The task kept changing while it was being completed; try again.")


@operation(body=schemas.TaskCompleteSchema, body_required=False, **_IDEMPOTENT_UPDATE)
@idempotent
async def complete_task(request: web.Request) -> web.Response:
    """Toggle a task's completed flag (no body), or set it ({"completed": bool})."""
    user_id, task_id = await _task(request)
    completed = None  # no body: toggle
    if has_body(request):
        completed = COMPLETE.load(await read_json(request))["completed"]
    if_match = if_match_versions(request)
    db = request.app[keys.DB]
    row = await _completing(
        request,
        lambda: db.val(
            "set_task_completed",
            id=task_id,
            user_id=user_id,
            if_match=if_match,
            completed=completed,
        ),
        {"completed": True},  # what refuses it: completing an open repeating task
        task_id,
        user_id,
        if_match,
    )
    return _task_response(await _written(request, row, task_id, user_id))


@operation(
    mounts=MOUNTS,
    parameters=(_TASK_ID, _IF_MATCH),
    ok={204: Answer("Deleted.")},
    problems=(404, 412, DATABASE),
)
async def delete_task(request: web.Request) -> web.Response:
    """Delete a task."""
    user_id, task_id = await _task(request)
    deleted = await request.app[keys.DB].val(
        "delete_task",
        id=task_id,
        user_id=user_id,
        if_match=if_match_versions(request),
        retention_seconds=request.app[keys.SETTINGS].changes_retention,
    )
    await _written(request, deleted, task_id, user_id)
    return web.Response(status=204)


# A search is bounded (API.md "Limits"), and its limits answer with these.
_LISTING_NOTES = {
    422: (
        "Invalid input; `errors` says which field and why. A search (`q`) that runs "
        "past SEARCH_TIMEOUT is cancelled with type `/problems/search-too-broad` "
        "(`errors.q`): narrow it (a longer q, or filters)."
    ),
    429: (
        "A rate limit is reached, or too many requests of this account are in flight "
        "(DB_MAX_PER_USER), or (type `/problems/search-in-progress`) this account's "
        "previous search still runs: an account runs one search at a time. Retry "
        "after Retry-After seconds."
    ),
    503: (
        "The database is unreachable, or the Better Auth keys cannot be fetched, or "
        "(type `/problems/searches-busy`) the process already runs SEARCH_CONCURRENCY "
        "searches and none ended within a moment; retry after Retry-After seconds."
    ),
}


@operation(
    description=(
        "The canonical parameters are `completed`, `q`, `priority`, `tag`, "
        "`due_after`, `due_before`, `overdue`, `sort`, `limit` and `cursor`; the "
        "filters combine (every one must hold). Every sort reads an index of the "
        "caller's tasks in its order, from the cursor on, so a deep page costs what "
        "the first does; `q` (3 letters or digits in a row) and `tag` find their "
        'matches through their own indexes first. The Hackathon "Evolution of Todo" '
        "names `status`, `search`, `sort=created|updated|title|due_date`, `sort_by`, "
        "`order` and `sort_order` are exact aliases; a parameter and its alias with "
        "different meanings is a 422 naming the alias."
    ),
    mounts=MOUNTS,
    query=schemas.TaskListQuerySchema,
    ok={200: Answer("A page of tasks.", {"type": "array", "items": schemas.TaskSchema}, ("Link",))},
    problems=(422, DATABASE),
    notes=_LISTING_NOTES,
)
async def list_tasks(request: web.Request) -> web.Response:
    """List the caller's tasks, one keyset page at a time."""
    user_id = _caller(request)
    params = _query(request, LIST_QUERY)
    sort, limit = params["sort"], params["limit"]
    q = params.get("q") or None
    tags = params.get("tag")
    column = sort.lstrip("-")
    completed = params.get("completed")
    filters = {
        "priorities": params.get("priority"),
        "due_after": params.get("due_after"),
        "due_before": params.get("due_before"),
        "overdue": params.get("overdue"),
    }
    page = {"user_id": user_id, "completed": completed, "q": q, "limit": limit + 1, **filters}
    indexed_q = q if q and _INDEXED_Q.search(q) else None
    page.update(indexed_q=indexed_q, tags=tags or None)  # through their GIN indexes first
    # The cursor holds for this caller, sort and filters only: the newer filters
    # only when given (older cursors still hold), the tags as they are compared.
    named = {**filters, "tags": [schemas.tag_key(t) for t in tags] if tags else None}
    context = (user_id, sort, completed, q, *((k, v) for k, v in named.items() if v is not None))
    codec = request.app[keys.CURSORS]
    db = request.app[keys.DB]
    value = after_id = None
    if "cursor" in params:
        value, after_id = codec.decode(params["cursor"], context, timestamp=column in _TIMESTAMPS)
    # Only a search takes a connection of its own: it is bounded (API.md "Limits").
    async with db.search(user_id) if q is not None else nullcontext() as conn:
        if sort == "-due_at":
            rows = await _latest_due_first(db, page, value, after_id, conn)
        else:
            rows = await db.many("list_tasks", conn=conn, **page, **_after(sort, value, after_id))
    # Each row is one task as the API's JSON, rendered by PostgreSQL.
    tasks = [r[0] for r in rows]
    if not tasks:
        await _account_exists(request, user_id)

    headers = dict(PER_USER)
    if len(tasks) > limit:
        tasks = tasks[:limit]
        last = orjson.loads(tasks[-1])
        value = last[column]
        if column in _TIMESTAMPS and value is not None:
            value = datetime.fromisoformat(value)
        cursor = codec.encode(value, last["id"], context)
        next_url = public_url(request, request.rel_url.update_query({"cursor": cursor}))
        headers["Link"] = f'<{next_url}>; rel="next"'
    body = f"[{','.join(tasks)}]".encode()
    return web.Response(body=body, headers=headers, content_type="application/json")


@operation(
    description=(
        "Keeps a client's own copy of its tasks. Without `since`: every task, oldest "
        "change first, in pages; while `more` is true call again with `since=<next>`, "
        "and when it is false keep `next` for the next sync. With `since`: every task "
        "created or changed and every task deleted after that token, in the same "
        "shape and pages. Nothing is skipped whatever order concurrent writes commit "
        "in; a task may come twice (apply by `id`, the newer `updated_at` wins). Each "
        "page reads an index of the caller's changes from the token on, so a sync "
        "with a few changes costs a few rows however many tasks there are."
    ),
    mounts=MOUNTS,
    query=schemas.ChangesQuerySchema,
    ok={
        200: Answer(
            "A page of changes.",
            schemas.ChangesSchema,
            links={
                "next": {
                    "operationId": "listChanges",
                    "parameters": {"since": "$response.body#/next"},
                    "description": "The rest of this sync while `more`, else the next sync.",
                }
            },
        )
    },
    problems=(400, 410, 422, DATABASE),
    notes={
        400: (
            "`since` is not a token this service issued to this caller (type "
            "`/problems/sync-token-invalid`): forged, edited or another account's. "
            "Sync from the start, without since."
        ),
        410: (
            "`since` can no longer be served (type `/problems/sync-token-expired`): "
            "older than CHANGES_RETENTION, or from another database (a restore, "
            "another Neon branch). Sync from the start, without since."
        ),
        422: "`limit` out of 1..500, or an unknown parameter; `errors` says which.",
    },
)
async def list_changes(request: web.Request) -> web.Response:
    """List the caller's changes since a sync token: tasks, deletions, reminders."""
    user_id = _caller(request)
    params = _query(request, CHANGES_QUERY)
    tokens = request.app[keys.SYNC_TOKENS]
    since = tokens.read(params["since"], user_id) if "since" in params else START
    page = await read_page(request.app, user_id, since, params["limit"])
    changes = page.changes
    tasks = ",".join(row["rendered"] for row in changes if not row["deleted"])
    deleted = ",".join(row["rendered"] for row in changes if row["deleted"])
    body = (
        f'{{"tasks":[{tasks}],"deleted":[{deleted}],"reminders":[],'
        f'"more":{"true" if page.more else "false"},"next":"{page.next}"}}'
    )
    return web.Response(body=body.encode(), headers=PER_USER, content_type="application/json")


def _after(sort: str, value: Any, after_id: Any) -> dict[str, Any]:
    """The cursor as the statements take it: the sort's value by its type."""
    timestamp = sort.lstrip("-") in _TIMESTAMPS
    return {
        "sort": sort,
        "after_at": value if timestamp else None,
        "after_text": None if timestamp else value,
        "after_id": after_id,
    }


# Below every id: "after" ('infinity', NIL) starts a due_at read at the
# edge of the tasks without a due_at, which sort as 'infinity'.
_NIL = uuid.UUID(int=0)


async def _latest_due_first(
    db: Any, page: dict[str, Any], value: Any, after_id: Any, conn: Any
) -> list[Any]:
    """A -due_at page off the one due_at index: the tasks with a due_at backward
    from below those without; then, while there is room, those without, forward
    (where a cursor without a value already is)."""
    rows: list[Any] = []
    if after_id is None or value is not None:
        after = _after("-due_at", value, after_id or _NIL)
        rows = await db.many("list_tasks", conn=conn, **page, **after)
    if len(rows) < page["limit"]:
        start = after_id if after_id is not None and value is None else _NIL
        rest = {**page, "limit": page["limit"] - len(rows)}
        rows += await db.many("list_tasks", conn=conn, **rest, **_after("due_at", None, start))
    return rows


@operation(
    tag="tasks",
    ok={
        200: Answer(
            "The caller's tags, most used first.", {"type": "array", "items": schemas.TagSchema}
        )
    },
    problems=(DATABASE,),
)
async def list_tags(request: web.Request) -> web.Response:
    """List the caller's tags with how many tasks carry each."""
    user_id = request[keys.USER_ID]
    rows = await request.app[keys.DB].many("list_tags", user_id=user_id)
    if not rows:
        await _account_exists(request, user_id)
    return json_response([schemas.tag_json(r) for r in rows], headers=PER_USER)


@operation(
    tag="tasks",
    ok={200: Answer("The caller's task counts.", schemas.SummarySchema)},
    problems=(DATABASE,),
)
async def task_summary(request: web.Request) -> web.Response:
    """Count the caller's tasks: total, open, completed, overdue."""
    user_id = request[keys.USER_ID]
    row = await request.app[keys.DB].one("summarise_tasks", user_id=user_id)
    if row["total"] == 0:
        await _account_exists(request, user_id)
    return json_response(schemas.summary_json(row), headers=PER_USER)
