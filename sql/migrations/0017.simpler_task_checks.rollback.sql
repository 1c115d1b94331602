-- Rollback of 0017: tasks_title_check, tasks_priority_check and
-- tasks_repeat_check back in the forms 0002 and 0010 wrote, validated, as
-- 0002 and 0011 left them. Each is dropped and added back in this one
-- transaction (no moment without the rule); adding it validated reads every
-- task under the ACCESS EXCLUSIVE lock that takes, about a second per
-- million tasks, so a large table is better rolled forward.

-- A rollback removes exactly what its migration did; replacing a CHECK's
-- expression is a drop and an add.
-- squawk-ignore-file ban-drop-constraint, constraint-missing-not-valid

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

ALTER TABLE tasks DROP CONSTRAINT tasks_title_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_title_check CHECK (
    char_length(title) BETWEEN 1 AND 200 AND title ~ '[^[:space:]]'
);

ALTER TABLE tasks DROP CONSTRAINT tasks_priority_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_priority_check CHECK (
    priority IN ('none', 'low', 'medium', 'high')
);

ALTER TABLE tasks DROP CONSTRAINT tasks_repeat_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_repeat_check CHECK (
    repeat IS NULL
    OR (char_length(repeat) BETWEEN 1 AND 200 AND due_at IS NOT NULL)
);
