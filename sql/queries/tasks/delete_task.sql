-- name: delete_task :val
-- Delete task $1 of the caller ($2), only while its version is one of $3
-- (If-Match; NULL = no condition). Returns the id, or no row.
-- Index: tasks_pkey.
DELETE FROM tasks
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
RETURNING id;
