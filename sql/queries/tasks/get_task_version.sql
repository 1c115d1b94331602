-- name: get_task_version :val
-- Params: $1 id uuid, $2 user_id uuid
-- Task id's version: 412 or 404 after a conditional write matched nothing.
-- Index: tasks_pkey.
SELECT version
FROM tasks
WHERE id = $1::uuid AND user_id = $2::uuid;
