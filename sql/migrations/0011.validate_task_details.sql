-- Migration 0011: validates 0010's CHECKs on the rows that were there.
-- depends: 0010.add_task_details
--
-- 0010 added tasks_priority_check, tasks_tags_check, tasks_repeat_check
-- and tasks_completed_at_check NOT VALID, so that adding them scanned nothing
-- under its ACCESS EXCLUSIVE lock. Every row written since is checked;
-- this reads the older ones once, under a SHARE UPDATE EXCLUSIVE lock,
-- which blocks no read and no write of tasks (only other schema changes).
-- About a second per million tasks. Rows older than 0010 hold the columns'
-- defaults, which pass; a failure here would name a row written around the
-- rules (by hand), and leave the constraint NOT VALID for a DBA to look at.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_priority_check;

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_tags_check;

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_repeat_check;

ALTER TABLE tasks VALIDATE CONSTRAINT tasks_completed_at_check;
