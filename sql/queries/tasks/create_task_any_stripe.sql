-- name: create_task_any_stripe :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer, $6 priority text,
--     $7 due_at timestamptz, $8 remind_at timestamptz, $9 tags text[],
--     $10 repeat text
-- create_task when its connection's own stripe (pg_backend_pid() % 64) is
-- full: the task is counted in the first of the caller's (user_id)
-- task_counts rows that no other create holds (SKIP LOCKED: one account's
-- creates never wait for each other) and that is under its share of
-- max_tasks (MAX_TASKS_PER_USER), (max_tasks - stripe + 63) / 64. The lock
-- re-checks that share on the committed row, so no stripe, hence no
-- account, passes its limit. No row: no stripe is both free and under its
-- share, or the own stripe is missing and may be made; the service then
-- runs create_task_near_limit, which makes it.
-- Index: task_counts_pkey (the account's stripes, in order; the own
-- stripe); tasks_pkey (new row); tasks_user_id_fkey checks users_pkey.
WITH slot AS (
    SELECT stripe
    FROM task_counts
    WHERE
        user_id = $1::uuid
        AND task_total < ($5::integer - stripe + 63) / 64
        AND (
            EXISTS (
                SELECT 1
                FROM task_counts AS own
                WHERE
                    own.user_id = $1::uuid
                    AND own.stripe = pg_backend_pid() % 64
            )
            -- A share of 0 (a limit under 64): never made, nothing to wait for.
            OR ($5::integer - pg_backend_pid() % 64 + 63) / 64 = 0
        )
    ORDER BY stripe
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),

counted AS (
    UPDATE task_counts AS c
    SET task_total = c.task_total + 1
    FROM slot
    WHERE c.user_id = $1::uuid AND c.stripe = slot.stripe
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
