-- name: get_task :one
-- Params: $1 id uuid, $2 user_id uuid
-- Task id if it belongs to user_id (another's is as missing as none).
-- Index: tasks_pkey.
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
