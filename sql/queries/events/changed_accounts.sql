-- name: changed_accounts :one
-- Params: $1 user_ids uuid[], $2 seen_xmax xid8, $3 seen_running xid8[]
-- Of user_ids (the accounts with an open event stream in this process), those
-- with a task written or deleted by a transaction the previous poll could
-- not see: one at or past that poll's snapshot xmax (seen_xmax), or still
-- running then (seen_running). Also this poll's own snapshot, for the next.
-- Index: tasks_user_id_change_xid_idx; task_tombstones_user_id_change_xid_idx.
WITH snapshot AS (
    SELECT
        pg_snapshot_xmax(pg_current_snapshot()) AS snapshot_xmax,
        array(SELECT pg_snapshot_xip(pg_current_snapshot())) AS snapshot_running
)

SELECT
    snapshot.snapshot_xmax,
    snapshot.snapshot_running,
    array(
        SELECT watched.user_id
        FROM unnest($1::uuid[]) AS watched (user_id)
        WHERE
            EXISTS (
                SELECT 1 FROM tasks
                WHERE
                    tasks.user_id = watched.user_id
                    AND (
                        tasks.change_xid >= $2::xid8
                        OR tasks.change_xid = any($3::xid8[])
                    )
            )
            OR EXISTS (
                SELECT 1 FROM task_tombstones AS gone
                WHERE
                    gone.user_id = watched.user_id
                    AND (
                        gone.change_xid >= $2::xid8
                        OR gone.change_xid = any($3::xid8[])
                    )
            )
    ) AS changed
FROM snapshot;
