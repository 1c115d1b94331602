-- Rollback of 0005: drops users.task_count and users_task_count_check.
-- Tasks are untouched; MAX_TASKS_PER_USER is then not enforced.

-- A rollback removes exactly what its migration created: dropping the
-- column and its CHECK is its job.
-- squawk-ignore-file ban-drop-column, ban-drop-constraint

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

ALTER TABLE users DROP CONSTRAINT users_task_count_check;

ALTER TABLE users DROP COLUMN task_count;
