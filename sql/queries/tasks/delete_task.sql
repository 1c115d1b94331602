-- name: delete_task :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[]
-- Delete task id of user_id while its version is one of if_match (NULL: any).
-- Index: tasks_pkey.
DELETE FROM tasks
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
RETURNING id;
