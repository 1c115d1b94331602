-- name: create_task :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer, $6 priority text,
--     $7 due_at timestamptz, $8 remind_at timestamptz, $9 tags text[],
--     $10 repeat text
-- Create a task for the caller (user_id): title, description (NULL for
-- none), completed (completed_at now if so), priority, due_at and
-- remind_at (NULL for none), tags ('{}' for none), repeat (NULL for
-- none), counted in the
-- account's task_counts row ("stripe") that belongs to this server
-- connection, pg_backend_pid() % 64, while it is under its share of max_tasks (MAX_TASKS_PER_USER),
-- (max_tasks - stripe + 63) / 64. Concurrent creates of one account run on
-- different connections, hence different stripes, so they do not wait for
-- each other, and a create writes one counter row once (an UPDATE; no
-- SELECT ... FOR UPDATE before it). The UPDATE re-checks the share on the
-- committed row, so no stripe, hence no account, passes its limit. No row:
-- this connection's stripe is missing or full; the service then runs
-- create_task_any_stripe, then create_task_near_limit (which makes a
-- missing own stripe). An account thus has a stripe for each server
-- connection its creates ran on, at most 64; the pool hands out the most
-- recently used connection first, so someone creating one task at a time
-- uses few.
-- Index: task_counts_pkey (the account's stripe); tasks_pkey (new row);
-- tasks_user_id_fkey checks users_pkey.
WITH counted AS (
    UPDATE task_counts
    SET task_total = task_total + 1
    WHERE
        user_id = $1::uuid
        AND stripe = pg_backend_pid() % 64
        AND task_total < ($5::integer - stripe + 63) / 64
    RETURNING user_id
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
