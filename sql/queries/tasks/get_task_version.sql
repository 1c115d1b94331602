-- name: get_task_version :val
-- Params: $1 id uuid, $2 user_id uuid
-- The current version of task id of the caller (user_id), or no row: after
-- a conditional write matched nothing, tells 412 (it exists, the version
-- moved) from 404.
-- Index: tasks_pkey.
SELECT version
FROM tasks
WHERE id = $1::uuid AND user_id = $2::uuid;
