-- Migration 0010: a task's priority, due and reminder times, tags,
-- repeat rule and completion time.
-- depends: 0009.unique_email_in_any_unicode_form
--
-- What: six columns on tasks, each bounded by a named CHECK with the API
-- validator's limits (service/tasks/schemas.py):
--   priority      'none' (default), 'low', 'medium' or 'high'
--                 (tasks_priority_check);
--   due_at        when it is due, or NULL;
--   remind_at     when to remind, or NULL;
--   tags          at most 20, each 1 to 40 characters, trimmed, not blank,
--                 no two equal ignoring case; '{}' for none
--                 (tasks_tags_check, through tasks_tags_valid());
--   repeat        an RFC 5545 RRULE value (the subset API.md allows,
--                 checked by the service), 1 to 200 characters, or NULL;
--                 only with a due_at (tasks_repeat_check);
--   completed_at  when it was last completed; NULL while open
--                 (tasks_completed_at_check). Tasks completed before this
--                 migration keep NULL: when they were completed is not
--                 known, and stamping them would rewrite every one.
--
-- Locks, on a populated table: adding the columns is a catalog change
-- (the defaults are constants: no rewrite), under a brief ACCESS EXCLUSIVE
-- lock bounded by lock_timeout. The CHECKs are added NOT VALID, so nothing
-- is scanned here; 0011 validates them without blocking reads or writes.
-- New and updated rows are checked from this migration on.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

ALTER TABLE tasks ADD COLUMN priority text NOT NULL DEFAULT 'none';

ALTER TABLE tasks ADD COLUMN due_at timestamptz;

ALTER TABLE tasks ADD COLUMN remind_at timestamptz;

ALTER TABLE tasks ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

ALTER TABLE tasks ADD COLUMN repeat text;

ALTER TABLE tasks ADD COLUMN completed_at timestamptz;

-- The tags rule, in one place for tasks_tags_check. IMMUTABLE: it reads
-- only its argument. The CHECK skips it for a task without tags: it runs on
-- every insert and update of the row, and measured 40-50% more PostgreSQL
-- CPU a create or patch when called for every task (bench/ab.py).
CREATE FUNCTION tasks_tags_valid(tags text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN
cardinality(tags) <= 20
AND array_position(tags, NULL) IS NULL
AND (
    SELECT
        bool_and(
            char_length(tag) BETWEEN 1 AND 40
            AND tag = btrim(tag)
            AND tag ~ '[^[:space:]]'
        )
        AND count(DISTINCT lower(tag)) = count(*)
    FROM unnest(tags) AS tag
) IS NOT FALSE;

ALTER TABLE tasks ADD CONSTRAINT tasks_priority_check CHECK (
    priority IN ('none', 'low', 'medium', 'high')
) NOT VALID;

ALTER TABLE tasks ADD CONSTRAINT tasks_tags_check CHECK (
    tags = '{}' OR tasks_tags_valid(tags)
) NOT VALID;

ALTER TABLE tasks ADD CONSTRAINT tasks_repeat_check CHECK (
    repeat IS NULL
    OR (char_length(repeat) BETWEEN 1 AND 200 AND due_at IS NOT NULL)
) NOT VALID;

ALTER TABLE tasks ADD CONSTRAINT tasks_completed_at_check CHECK (
    completed_at IS NULL OR completed
) NOT VALID;
