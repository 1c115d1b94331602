-- name: delete_task :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[]
-- Delete task id of the caller (user_id), only while its version is one of
-- if_match (If-Match; NULL = no condition), and take it off the account's
-- users.task_count in the same statement. Returns the id, or no row.
-- Index: tasks_pkey; users_pkey (the count).
WITH deleted AS (
    DELETE FROM tasks
    WHERE
        id = $1::uuid
        AND user_id = $2::uuid
        AND ($3::integer[] IS NULL OR version = any($3::integer[]))
    RETURNING id, user_id
),

uncounted AS (
    UPDATE users
    SET task_count = users.task_count - 1
    FROM deleted
    WHERE users.id = deleted.user_id
)

SELECT id FROM deleted;
