-- name: create_task :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer
-- Create a task for the caller (user_id): title, description (NULL for
-- none), completed, counted in one of the account's 16 task_counts rows,
-- picked at random, while that stripe is under its share of max_tasks
-- (MAX_TASKS_PER_USER): (max_tasks - stripe + 15) / 16. READ COMMITTED
-- re-checks that on the committed row after waiting for its lock, so no
-- stripe, hence no account, passes its limit. No row: that stripe is full
-- or the account has no counters yet; the service then runs
-- create_task_counters and create_task_near_limit.
-- Index: task_counts_pkey (the stripe); tasks_pkey (new row);
-- tasks_user_id_fkey checks users_pkey.
WITH counted AS (
    UPDATE task_counts
    SET task_total = task_total + 1
    WHERE
        user_id = $1::uuid
        AND stripe = (SELECT floor(random() * 16)::smallint)
        AND task_total < ($5::integer - stripe + 15) / 16
    RETURNING user_id
)

INSERT INTO tasks (user_id, title, description, completed)
SELECT
    counted.user_id,
    $2::text,
    $3::text,
    $4::boolean
FROM counted
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
