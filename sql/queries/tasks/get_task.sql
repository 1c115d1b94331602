-- name: get_task :one
-- Task $1, only if it belongs to the caller ($2): another user's task is
-- indistinguishable from a missing one.
-- Index: tasks_pkey (id), then the user_id check on that one row.
SELECT
    id,
    user_id,
    title,
    description,
    completed,
    version,
    created_at,
    updated_at
FROM tasks
WHERE id = $1::uuid AND user_id = $2::uuid;
