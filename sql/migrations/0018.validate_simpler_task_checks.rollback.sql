-- Rollback of 0018: 0017's CHECKs become NOT VALID again, as 0017 left
-- them: each is dropped and added back NOT VALID, in this one transaction
-- (no moment without the rule), scanning nothing.

-- A rollback removes exactly what its migration did; the drop and re-add
-- is the only way back to NOT VALID.
-- squawk-ignore-file ban-drop-constraint

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

ALTER TABLE tasks DROP CONSTRAINT tasks_title_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_title_check CHECK (
    char_length(title) <= 200 AND title ~ '[^[:space:]]'
) NOT VALID;

ALTER TABLE tasks DROP CONSTRAINT tasks_priority_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_priority_check CHECK (
    priority = any('{none,low,medium,high}'::text[])
) NOT VALID;

ALTER TABLE tasks DROP CONSTRAINT tasks_repeat_check;

ALTER TABLE tasks ADD CONSTRAINT tasks_repeat_check CHECK (
    repeat IS NULL OR (due_at IS NOT NULL AND repeat ~ '^.{1,200}$')
) NOT VALID;
