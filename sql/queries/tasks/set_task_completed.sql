-- name: set_task_completed :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[],
--     $4 completed boolean
-- Set completed (NULL: toggle) under if_match; not to complete a repeating task.
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
RETURNING tasks;
