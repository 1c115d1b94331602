-- Rollback of 0002: drops the tasks table, its trigger and trigger function.
-- Destroys every task.

-- A rollback removes exactly what its migration created: dropping the
-- table, its index, trigger and function is its job. Plain DROP INDEX, not
-- CONCURRENTLY, keeps the rollback one transaction; its lock_timeout
-- bounds the wait for the table's lock.
-- squawk-ignore-file ban-drop-table, ban-drop-function, ban-drop-index
-- squawk-ignore-file require-concurrent-index-deletion

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP TRIGGER tasks_stamp_update_trg ON tasks;

DROP FUNCTION tasks_stamp_update();

DROP INDEX tasks_user_id_created_at_idx;

DROP TABLE tasks;
