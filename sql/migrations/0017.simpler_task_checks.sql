-- Migration 0017: three tasks CHECKs in forms PostgreSQL prepares faster,
-- with the same rules and names.
-- depends: 0016.task_functions_in_plpgsql
--
-- Why: PostgreSQL reads every CHECK of a table back from its stored node
-- text, plans it and builds it afresh for every INSERT and UPDATE
-- statement, so each one costs every create and patch in proportion to
-- its size: the nodes written, not the rows checked. These three were the
-- largest. bench/statement_cpu.py, PostgreSQL CPU a create (create_task),
-- lowest of 15 rounds: 175 us before, 167 us after.
--
-- What, each rule unchanged (the service's validator limits,
-- service/tasks/schemas.py):
--   tasks_title_check     1 to 200 characters, something that shows:
--                         `char_length(title) BETWEEN 1 AND 200 AND
--                         title ~ '[^[:space:]]'` becomes
--                         `char_length(title) <= 200 AND title ~ ...`;
--                         a title with a non-space character has one.
--   tasks_priority_check  'none', 'low', 'medium' or 'high': the IN list
--                         becomes one array constant, `= any('{...}')`,
--                         which is what PostgreSQL made of the list on
--                         every statement.
--   tasks_repeat_check    NULL, or 1 to 200 characters with a due_at:
--                         `char_length(repeat) BETWEEN 1 AND 200` becomes
--                         `repeat ~ '^.{1,200}$'` (a PostgreSQL regular
--                         expression's `.` matches any character, a line
--                         break too, and `$` only the end).
--
-- Locks, on a populated table: each CHECK is dropped and added back in this
-- one transaction, so no row is ever written without its rule, under a
-- brief ACCESS EXCLUSIVE lock bounded by lock_timeout. They come back NOT
-- VALID, so nothing is scanned here; 0018 validates them without blocking
-- reads or writes. New and updated rows are checked throughout.

-- Replacing a CHECK's expression is a drop and an add; see Locks above.
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
