-- name: update_task :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[], $4 title text,
--     $5 description_sent boolean, $6 description text,
--     $7 completed boolean, $8 priority text, $9 due_at_sent boolean,
--     $10 due_at timestamptz, $11 remind_at_sent boolean,
--     $12 remind_at timestamptz, $13 tags text[], $14 repeat_sent boolean,
--     $15 repeat text, $16 repeat_checked boolean
-- The sent fields under if_match; completing a repeating task needs repeat_checked.
-- Index: tasks_pkey.
UPDATE tasks
SET
    title = coalesce($4::text, title),
    description = CASE WHEN $5::boolean THEN $6::text ELSE description END,
    completed = coalesce($7::boolean, completed),
    completed_at = CASE
        WHEN NOT coalesce($7::boolean, completed) THEN NULL
        WHEN completed THEN completed_at
        ELSE now()
    END,
    priority = coalesce($8::text, priority),
    due_at = CASE WHEN $9::boolean THEN $10::timestamptz ELSE due_at END,
    remind_at = CASE WHEN $11::boolean THEN $12::timestamptz ELSE remind_at END,
    tags = coalesce($13::text[], tags),
    repeat = CASE WHEN $14::boolean THEN $15::text ELSE repeat END
WHERE
    id = $1::uuid
    AND user_id = $2::uuid
    AND ($3::integer[] IS NULL OR version = any($3::integer[]))
    AND (
        $16::boolean
        OR completed
        OR NOT coalesce($7::boolean, FALSE)
        OR CASE WHEN $14::boolean THEN $15::text ELSE repeat END IS NULL
    )
RETURNING tasks;
