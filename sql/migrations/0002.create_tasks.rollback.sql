-- Rollback of 0002: drops the tasks table, its trigger and trigger function.
-- Destroys every task.

DROP TRIGGER tasks_stamp_update_trg ON tasks;

DROP FUNCTION tasks_stamp_update();

DROP INDEX tasks_user_id_created_at_idx;

DROP TABLE tasks;
