-- name: get_task_version :val
-- The current version of task $1 of the caller ($2), or no row: after a
-- conditional write matched nothing, tells 412 (it exists, the version moved)
-- from 404.
-- Index: tasks_pkey.
SELECT version
FROM tasks
WHERE id = $1::uuid AND user_id = $2::uuid;
