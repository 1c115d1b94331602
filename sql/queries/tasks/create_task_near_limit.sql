-- name: create_task_near_limit :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer
-- create_task when its stripe had no room: locks all of the caller's
-- (user_id) 16 task_counts rows, in stripe order (so two of these cannot
-- deadlock), reads their committed counts, and counts the task in the
-- emptiest stripe under its share of max_tasks. No row: every stripe is
-- full, the account owns max_tasks tasks (the service answers 403).
-- Index: task_counts_pkey (the account's stripes); tasks_pkey (new row);
-- tasks_user_id_fkey checks users_pkey.
WITH locked AS (
    SELECT
        stripe,
        task_total
    FROM task_counts
    WHERE user_id = $1::uuid
    ORDER BY stripe
    FOR UPDATE
),

chosen AS (
    SELECT stripe
    FROM locked
    WHERE task_total < ($5::integer - stripe + 15) / 16
    ORDER BY task_total, stripe
    LIMIT 1
),

counted AS (
    UPDATE task_counts AS c
    SET task_total = c.task_total + 1
    FROM chosen
    WHERE c.user_id = $1::uuid AND c.stripe = chosen.stripe
    RETURNING c.user_id
)

INSERT INTO tasks (user_id, title, description, completed)
SELECT
    counted.user_id,
    $2::text,
    $3::text,
    $4::boolean
FROM counted
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
