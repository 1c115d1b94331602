-- Rollback of 0005: drops task_counts. Tasks are untouched;
-- MAX_TASKS_PER_USER is then not enforced.

-- A rollback removes exactly what its migration created: dropping the
-- table is its job.
-- squawk-ignore-file ban-drop-table

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP TABLE task_counts;
