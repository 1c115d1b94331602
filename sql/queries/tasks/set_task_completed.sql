-- name: set_task_completed :one
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[],
--     $4 completed boolean
-- PATCH .../complete: on task id of the caller (user_id), only while its
-- version is one of if_match (If-Match; NULL = no condition), set completed,
-- or toggle it when completed is NULL; completed_at is stamped when it
-- turns true and cleared when it turns false. Completing a repeating task
-- (repeat not NULL) changes nothing and returns no row: the service then
-- works out its next occurrence and writes it with update_task. Atomic for the same reason as
-- update_task.
-- Index: tasks_pkey.
UPDATE tasks
SET
    completed = coalesce($4::boolean, NOT completed),
    completed_at = CASE
        WHEN NOT coalesce($4::boolean, NOT completed) THEN NULL
        WHEN completed THEN completed_at
        ELSE now()
    END
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
    AND (completed OR NOT coalesce($4::boolean, TRUE) OR repeat IS NULL)
RETURNING
    id, user_id, title, description, completed, completed_at, priority, due_at,
    remind_at, tags, repeat, version, created_at, updated_at;
