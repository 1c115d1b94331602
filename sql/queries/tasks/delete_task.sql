-- name: delete_task :val
-- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[], $4 retention_seconds float8
-- Delete task id of user_id while its version is one of if_match (NULL: any),
-- leaving a tombstone for the change feed; and up to 20 anyone's tombstones
-- older than retention_seconds and a day deleted, so that every delete
-- clears at least as many as it adds. The day: a token is refused after
-- retention_seconds, and a tombstone it still needs may have been stamped
-- (deleted_at) up to one statement_timeout before the token was issued.
-- Index: tasks_pkey; task_tombstones_pkey; task_tombstones_deleted_at_idx.
WITH deleted AS (
    DELETE FROM tasks
    WHERE
        id = $1::uuid
        AND user_id = $2::uuid
        AND ($3::integer[] IS NULL OR version = any($3::integer[]))
    RETURNING id, user_id
),

expired AS (
    DELETE FROM task_tombstones
    WHERE task_id IN (
        SELECT stale.task_id
        FROM task_tombstones AS stale
        WHERE
            stale.deleted_at
            < now() - make_interval(secs => $4::float8) - interval '1 day'
        ORDER BY stale.deleted_at
        LIMIT 20
    )
)

INSERT INTO task_tombstones (task_id, user_id)
SELECT
    deleted.id,
    deleted.user_id
FROM deleted
RETURNING task_id;
