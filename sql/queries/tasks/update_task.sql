-- name: update_task :one
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[], $4 title text,
--     $5 description_sent boolean, $6 description text,
--     $7 completed boolean
-- PUT and PATCH: change the fields that were sent on task id of the caller
-- (user_id), only while its version is one of if_match (If-Match; NULL = no
-- condition). title and completed: NULL keeps the value. description_sent
-- says whether a description was sent, since a NULL description is a value
-- (clear it). The row lock makes the version check atomic: of two writers
-- sending the same If-Match, the second re-reads the row, sees the new
-- version, and updates nothing. tasks_stamp_update_trg bumps version and
-- updated_at.
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
