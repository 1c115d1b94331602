-- Rollback of 0010: drops priority, due_at, remind_at, tags, repeat and
-- completed_at from tasks (with what they held), their CHECKs and
-- tasks_tags_valid().

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-column, ban-drop-function

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- Dropping a column drops its CHECK with it.
ALTER TABLE tasks DROP COLUMN completed_at;

ALTER TABLE tasks DROP COLUMN repeat;

ALTER TABLE tasks DROP COLUMN tags;

ALTER TABLE tasks DROP COLUMN remind_at;

ALTER TABLE tasks DROP COLUMN due_at;

ALTER TABLE tasks DROP COLUMN priority;

DROP FUNCTION tasks_tags_valid(text[]);
