-- name: set_task_completed :one
-- PATCH .../complete: on task $1 of the caller ($2), only while its version is
-- one of $3 (If-Match; NULL = no condition), set completed to $4, or toggle it
-- when $4 is NULL. Atomic for the same reason as update_task.
-- Index: tasks_pkey.
UPDATE tasks
SET completed = coalesce($4::boolean, NOT completed)
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
