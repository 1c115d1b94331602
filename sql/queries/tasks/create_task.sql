-- name: create_task :val
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer, $6 priority text,
--     $7 due_at timestamptz, $8 remind_at timestamptz, $9 tags text[],
--     $10 repeat text
-- Create a task while task_totals is under max_tasks; no row: limit or no account.
-- Index: task_totals_pkey (the account's counter); tasks_pkey.
WITH counter AS (
    SELECT user_id
    FROM task_totals
    WHERE user_id = $1::uuid AND task_total < $5::integer
    FOR NO KEY UPDATE
)

INSERT INTO tasks (
    user_id, title, description, completed, completed_at, priority, due_at,
    remind_at, tags, repeat
)
SELECT
    counter.user_id,
    $2::text,
    $3::text,
    $4::boolean,
    CASE WHEN $4::boolean THEN now() END AS completed_at,
    $6::text,
    $7::timestamptz,
    $8::timestamptz,
    $9::text[],
    $10::text
FROM counter
RETURNING tasks;
