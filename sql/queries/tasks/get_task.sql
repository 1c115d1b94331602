-- name: get_task :val
-- Params: $1 id uuid, $2 user_id uuid
-- Task id if it belongs to user_id (another's is as missing as none).
-- Index: tasks_pkey.
SELECT tasks
FROM tasks
WHERE id = $1::uuid AND user_id = $2::uuid;
