-- Migration 0024: what the change feed (GET /api/tasks/changes) reads.
-- depends: 0023.add_idempotency_keys
--
-- tasks.change_xid: the id of the transaction that last wrote the task,
-- set by the column's default on insert and by tasks_stamp_update() on
-- every update, so no write path can forget it. Tasks written before this
-- migration read '0' (a constant default: no rewrite); every later write
-- carries its transaction's id. A sync reads the changes whose change_xid
-- is at least the xmin of the previous sync's snapshot: every transaction
-- that snapshot could not see has an id at least that, whatever order it
-- committed in (docs/developing.md,
-- "The change feed", says why that skips nothing).
-- 0025 builds the index a sync reads, tasks_user_id_change_xid_idx.
--
-- task_tombstones: one row per deleted task, written by delete_task.sql,
-- with the same change_xid, so a sync returns deletions as it returns
-- changes. Each delete removes up to 20 tombstones older than
-- CHANGES_RETENTION and a day, so no cron job is needed; the account's
-- deletion takes its tombstones (ON DELETE CASCADE).
--   task_tombstones_pkey                 one tombstone per task id
--   task_tombstones_user_id_change_xid_idx  what a sync reads
--   task_tombstones_deleted_at_idx       what the clean-up reads
--
-- Locks, on a populated table: adding the column and replacing the
-- trigger's function are catalog changes under a brief ACCESS EXCLUSIVE
-- lock on tasks, bounded by lock_timeout.

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- A constant default: existing rows read '0' without a rewrite.
ALTER TABLE tasks ADD COLUMN change_xid xid8 NOT NULL DEFAULT '0';

-- From now on each insert carries its own transaction's id.
ALTER TABLE tasks ALTER COLUMN change_xid SET DEFAULT pg_current_xact_id();

-- As 0002's, and the writing transaction's id on every update.
CREATE OR REPLACE FUNCTION tasks_stamp_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.version := OLD.version + 1;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    NEW.change_xid := pg_current_xact_id();
    RETURN NEW;
END;
$$;

CREATE TABLE task_tombstones (
    task_id uuid NOT NULL,
    user_id uuid NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    change_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT task_tombstones_pkey PRIMARY KEY (task_id),
    CONSTRAINT task_tombstones_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX task_tombstones_user_id_change_xid_idx
ON task_tombstones (user_id, change_xid, task_id);

CREATE INDEX task_tombstones_deleted_at_idx ON task_tombstones (deleted_at);
