-- name: list_changes :many
-- Params: $1 user_id uuid, $2 after_xid xid8, $3 after_id uuid,
--     $4 limit integer, $5 deletions boolean
-- A page of user_id's change feed: the tasks, and while deletions the
-- tombstones, after (after_xid, after_id) in (change_xid, id) order, at
-- most limit of them; each task as the API's JSON (the keys of TaskSchema
-- in its order, timestamps by api_timestamp()), each tombstone as
-- {"id", "deleted_at"}. Every row also carries this statement's snapshot
-- (its xmin and xmax, the next token's floor and the newest id it could
-- know), its time, whether the account still exists, and the database's
-- identity (system, timeline, database, Neon timeline); with no change, one
-- row of those alone.
-- Index: tasks_user_id_change_xid_idx; task_tombstones_user_id_change_xid_idx;
-- users_pkey.
WITH snapshot AS (
    SELECT
        pg_snapshot_xmin(pg_current_snapshot()) AS snapshot_xmin,
        pg_snapshot_xmax(pg_current_snapshot()) AS snapshot_xmax,
        now() AS read_at,
        (
            SELECT count(*) = 1 FROM users
            WHERE users.id = $1::uuid
        ) AS account_exists,
        md5(concat_ws(
            ':',
            (SELECT control.system_identifier FROM pg_control_system() AS control),
            left(pg_walfile_name(pg_current_wal_lsn()), 8),
            (
                SELECT db.oid FROM pg_database AS db
                WHERE db.datname = current_database()
            ),
            current_setting('neon.timeline_id', TRUE)
        )) AS database_id
),

changed AS (
    (
        SELECT
            tasks.change_xid,
            tasks.id,
            FALSE AS deleted,
            row_to_json(shown)::text AS rendered
        FROM
            tasks,
            LATERAL (
                -- The API's keys in TaskSchema's order.
                SELECT
                    tasks.id,
                    tasks.user_id,
                    tasks.title,
                    tasks.description,
                    tasks.completed,
                    api_timestamp(tasks.completed_at) AS completed_at,
                    tasks.priority,
                    api_timestamp(tasks.due_at) AS due_at,
                    api_timestamp(tasks.remind_at) AS remind_at,
                    tasks.tags,
                    tasks.repeat,
                    api_timestamp(tasks.created_at) AS created_at,
                    api_timestamp(tasks.updated_at) AS updated_at
            ) AS shown
        WHERE
            tasks.user_id = $1::uuid
            AND (tasks.change_xid, tasks.id) > ($2::xid8, $3::uuid)
        ORDER BY tasks.change_xid, tasks.id
        LIMIT $4::integer
    )
    UNION ALL
    (
        SELECT
            gone.change_xid,
            gone.task_id,
            TRUE AS deleted,
            row_to_json(shown)::text AS rendered
        FROM
            task_tombstones AS gone,
            LATERAL (
                SELECT
                    gone.task_id AS id,
                    api_timestamp(gone.deleted_at) AS deleted_at
            ) AS shown
        WHERE
            $5::boolean
            AND gone.user_id = $1::uuid
            AND (gone.change_xid, gone.task_id) > ($2::xid8, $3::uuid)
        ORDER BY gone.change_xid, gone.task_id
        LIMIT $4::integer
    )
    ORDER BY change_xid, id
    LIMIT $4::integer
)

SELECT
    snapshot.snapshot_xmin,
    snapshot.snapshot_xmax,
    snapshot.read_at,
    snapshot.account_exists,
    snapshot.database_id,
    changed.change_xid,
    changed.id,
    changed.deleted,
    changed.rendered
FROM snapshot
LEFT JOIN changed ON TRUE
ORDER BY changed.change_xid, changed.id;
