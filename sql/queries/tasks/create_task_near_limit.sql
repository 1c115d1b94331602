-- name: create_task_near_limit :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer, $6 priority text,
--     $7 due_at timestamptz, $8 remind_at timestamptz, $9 tags text[],
--     $10 repeat text
-- create_task_any_stripe when no stripe was both free and under its share,
-- in the transaction lock_task_counts opened (stripes are made only under
-- that lock, so this statement sees them all). While the caller (user_id)
-- has fewer than its 64 stripes, it makes a missing one with a share of
-- max_tasks, this connection's own (pg_backend_pid() % 64, create_task's
-- next time) if that one is missing, else the first; it counts the task
-- there and touches no other. Otherwise it locks every stripe, in order,
-- reads their committed counts and counts the task in the first under its
-- share. No row: every stripe is at its share, so the account owns
-- max_tasks tasks (the service answers 403).
-- Index: task_counts_pkey (the account's stripes); tasks_pkey (new row);
-- tasks_user_id_fkey checks users_pkey.
WITH missing AS (
    SELECT stripes.stripe
    FROM generate_series(0, 63) AS stripes (stripe)
    WHERE
        ($5::integer - stripes.stripe + 63) / 64 > 0
        AND NOT EXISTS (
            SELECT 1
            FROM task_counts AS made
            WHERE made.user_id = $1::uuid AND made.stripe = stripes.stripe
        )
    ORDER BY stripes.stripe <> pg_backend_pid() % 64, stripes.stripe
    LIMIT 1
),

locked AS (
    SELECT
        stripe,
        task_total
    FROM task_counts
    WHERE
        user_id = $1::uuid
        AND NOT EXISTS (SELECT 1 FROM missing)
    ORDER BY stripe
    FOR UPDATE
),

chosen AS (
    SELECT stripe
    FROM missing
    UNION ALL
    (
        SELECT stripe
        FROM locked
        WHERE task_total < ($5::integer - stripe + 63) / 64
        ORDER BY stripe
        LIMIT 1
    )
),

counted AS (
    INSERT INTO task_counts AS c (user_id, stripe, task_total)
    SELECT
        $1::uuid,
        chosen.stripe,
        1 AS task_total
    FROM chosen
    ON CONFLICT (user_id, stripe) DO UPDATE SET task_total = c.task_total + 1
    RETURNING c.user_id
)

INSERT INTO tasks (
    user_id, title, description, completed, completed_at, priority, due_at,
    remind_at, tags, repeat
)
SELECT
    counted.user_id,
    $2::text,
    $3::text,
    $4::boolean,
    CASE WHEN $4::boolean THEN now() END AS completed_at,
    $6::text,
    $7::timestamptz,
    $8::timestamptz,
    $9::text[],
    $10::text
FROM counted
RETURNING
    id, user_id, title, description, completed, completed_at, priority, due_at,
    remind_at, tags, repeat, version, created_at, updated_at;
