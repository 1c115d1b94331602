-- name: update_task :one
-- PUT and PATCH: change the fields that were sent on task $1 of the caller
-- ($2), only while its version is one of $3 (If-Match; NULL = no condition).
-- $4 title and $7 completed: NULL keeps the value. $5 says whether a
-- description was sent, since $6 NULL is a value (clear it). The row lock
-- makes the version check atomic: of two writers sending the same If-Match,
-- the second re-reads the row, sees the new version, and updates nothing.
-- tasks_stamp_update_trg bumps version and updated_at.
-- Index: tasks_pkey.
UPDATE tasks
SET
    title = coalesce($4::text, title),
    description = CASE WHEN $5::boolean THEN $6::text ELSE description END,
    completed = coalesce($7::boolean, completed)
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
