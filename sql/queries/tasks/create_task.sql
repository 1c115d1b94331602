-- name: create_task :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean, $5 max_tasks integer
-- Create a task for the caller (user_id): title, description (NULL for
-- none), completed; only while the account owns fewer than max_tasks
-- (MAX_TASKS_PER_USER), counting it in users.task_count in the same
-- statement. No row: the limit is reached (the service answers 403). The
-- UPDATE row-locks the account, and a create that waited on that lock
-- re-checks task_count < max_tasks on the committed row (READ COMMITTED),
-- so two creates at the limit cannot both pass. A user_id that no longer
-- exists still reaches the INSERT and raises tasks_user_id_fkey (401: the
-- account is gone); that probe runs only when the UPDATE matched nothing.
-- Index: users_pkey (the count); tasks_pkey (new row); tasks_user_id_fkey
-- checks users_pkey.
WITH counted AS (
    UPDATE users
    SET task_count = task_count + 1
    WHERE id = $1::uuid AND task_count < $5::integer
    RETURNING id
)

INSERT INTO tasks (user_id, title, description, completed)
SELECT
    $1::uuid,
    $2::text,
    $3::text,
    $4::boolean
WHERE
    EXISTS (SELECT 1 FROM counted)
    OR NOT EXISTS (
        SELECT 1 FROM users
        WHERE id = $1::uuid
    )
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
