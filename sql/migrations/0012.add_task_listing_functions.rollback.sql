-- Rollback of 0012: drops tasks_priority_rank() and tasks_tag_keys(). The
-- indexes on them (0014, 0015) are rolled back first.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-function

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP FUNCTION tasks_tag_keys(uuid, text[]);

DROP FUNCTION tasks_priority_rank(text);
