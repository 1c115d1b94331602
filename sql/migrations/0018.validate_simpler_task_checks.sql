-- Migration 0018: validates 0017's CHECKs on the rows that were there.
-- depends: 0017.simpler_task_checks
--
-- 0017 added tasks_title_check, tasks_priority_check and tasks_repeat_check
-- back NOT VALID, in forms equal to the validated ones they replaced, so
-- every row passes; this reads them once to say so, under a SHARE UPDATE
-- EXCLUSIVE lock, which blocks no read and no write of tasks (only other
-- schema changes). About a second per million tasks.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_title_check;

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_priority_check;

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_repeat_check;
