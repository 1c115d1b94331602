-- name: delete_task :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[]
-- Delete task id of the caller (user_id), only while its version is one of
-- if_match (If-Match; NULL = no condition); the tasks triggers (0020) take
-- it off the account's task_totals row. Returns the id, or no row.
-- Index: tasks_pkey.
DELETE FROM tasks
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
RETURNING id;
