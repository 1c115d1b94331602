-- name: delete_task :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[]
-- Delete task id of the caller (user_id), only while its version is one of
-- if_match (If-Match; NULL = no condition), and take it off the account's
-- highest non-zero task_counts row (creates fill the lowest first) in the
-- same statement. Returns the id, or no row.
-- Index: tasks_pkey; task_counts_pkey (the account's stripes).
WITH deleted AS (
    DELETE FROM tasks
    WHERE
        id = $1::uuid
        AND user_id = $2::uuid
        AND ($3::integer[] IS NULL OR version = any($3::integer[]))
    RETURNING id
),

slot AS (
    SELECT stripe
    FROM task_counts
    WHERE
        user_id = $2::uuid
        AND task_total > 0
        AND EXISTS (SELECT 1 FROM deleted)
    ORDER BY stripe DESC
    LIMIT 1
    FOR UPDATE
),

uncounted AS (
    UPDATE task_counts AS c
    SET task_total = c.task_total - 1
    FROM slot
    WHERE c.user_id = $2::uuid AND c.stripe = slot.stripe
)

SELECT id FROM deleted;
