-- Rollback of 0011: 0010's CHECKs become NOT VALID again, as 0010 left
-- them: each is dropped and added back NOT VALID, in this one transaction
-- (no moment without the rule), scanning nothing.

-- A rollback removes exactly what its migration did; the drop and re-add
-- is the only way back to NOT VALID.
-- squawk-ignore-file ban-drop-constraint

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

ALTER TABLE tasks DROP CONSTRAINT tasks_priority_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_priority_check CHECK (
    priority IN ('none', 'low', 'medium', 'high')
) NOT VALID;

ALTER TABLE tasks DROP CONSTRAINT tasks_tags_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_tags_check CHECK (
    tags = '{}' OR tasks_tags_valid(tags)
) NOT VALID;

ALTER TABLE tasks DROP CONSTRAINT tasks_repeat_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_repeat_check CHECK (
    repeat IS NULL
    OR (char_length(repeat) BETWEEN 1 AND 200 AND due_at IS NOT NULL)
) NOT VALID;

ALTER TABLE tasks DROP CONSTRAINT tasks_completed_at_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_completed_at_check CHECK (
    completed_at IS NULL OR completed
) NOT VALID;
