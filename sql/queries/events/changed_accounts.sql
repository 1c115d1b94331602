-- name: changed_accounts :one
-- Params: $1 user_ids uuid[], $2 seen_xmax xid8, $3 seen_floor xid8,
--     $4 seen_running xid8[]
-- Of user_ids (the accounts with an open event stream in this process), those
-- with a task written or deleted by a transaction the previous poll could
-- not see: one at or past that poll's snapshot xmax (seen_xmax), or still
-- running then (seen_running, none below seen_floor, its least or seen_xmax).
-- Also this poll's own snapshot, for the next. Each account is two probes,
-- each an index range from seen_floor on (LATERAL with LIMIT: never one
-- scan of every account's rows; the subquery is correlated, so no CTE, and
-- any one row answers, so no ORDER BY).
-- Index: tasks_user_id_change_xid_idx; task_tombstones_user_id_change_xid_idx.
WITH snapshot AS (
    SELECT
        pg_snapshot_xmax(pg_current_snapshot()) AS snapshot_xmax,
        array(SELECT pg_snapshot_xip(pg_current_snapshot())) AS snapshot_running
),

changed AS (
    SELECT watched.user_id
    FROM unnest($1::uuid[]) AS watched (user_id)
    CROSS JOIN LATERAL (  -- noqa: ST05
        SELECT probes.hit
        FROM (
            (
                SELECT 1 AS hit FROM tasks
                WHERE
                    tasks.user_id = watched.user_id
                    AND tasks.change_xid >= $3::xid8
                    AND (
                        tasks.change_xid >= $2::xid8
                        OR tasks.change_xid = any($4::xid8[])
                    )
                LIMIT 1  -- noqa: AM09
            )
            UNION ALL
            (
                SELECT 1 AS hit FROM task_tombstones AS gone
                WHERE
                    gone.user_id = watched.user_id
                    AND gone.change_xid >= $3::xid8
                    AND (
                        gone.change_xid >= $2::xid8
                        OR gone.change_xid = any($4::xid8[])
                    )
                LIMIT 1  -- noqa: AM09
            )
        ) AS probes
        LIMIT 1  -- noqa: AM09
    ) AS found
)

SELECT
    snapshot.snapshot_xmax,
    snapshot.snapshot_running,
    array(SELECT changed.user_id FROM changed) AS changed
FROM snapshot;
