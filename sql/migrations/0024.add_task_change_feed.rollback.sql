-- Rollback of 0024: tasks.change_xid and task_tombstones go, with every
-- tombstone, and tasks_stamp_update() is 0002's again; the previous
-- release has no change feed.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-table, ban-drop-column

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP TABLE task_tombstones;

CREATE OR REPLACE FUNCTION tasks_stamp_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.version := OLD.version + 1;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END;
$$;

ALTER TABLE tasks DROP COLUMN change_xid;
