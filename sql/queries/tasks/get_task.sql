-- name: get_task :one
-- Params: $1 id uuid, $2 user_id uuid
-- Task id, only if it belongs to the caller (user_id): another user's task
-- is indistinguishable from a missing one.
-- Index: tasks_pkey (id), then the user_id check on that one row.
SELECT
    id,
    user_id,
    title,
    description,
    completed,
    completed_at,
    priority,
    due_at,
    remind_at,
    tags,
    repeat,
    version,
    created_at,
    updated_at
FROM tasks
WHERE id = $1::uuid AND user_id = $2::uuid;
