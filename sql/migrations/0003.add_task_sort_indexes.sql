-- Migration 0003: indexes for the other task list orders.
-- depends: 0002.create_tasks
--
-- GET /api/tasks sorts a user's tasks by created_at (0002's
-- tasks_user_id_created_at_idx), updated_at or title, ties broken by id, in
-- either direction; each order is read as a keyset page straight off one of
-- these indexes (backward for descending), so a deep page costs what the
-- first does. Titles sort in the ICU root collation ("und-x-icu"): apple,
-- Apple, ärger, Banana, zebra, the order people expect, not byte order.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- Not CONCURRENTLY: 0003 ships in the same first release as 0002, so it
-- runs in the same `todo-api migrate` that has just created tasks, with no
-- rows and no traffic yet; the build takes milliseconds, under this file's
-- lock_timeout. An index on a table that has rows gets a migration of its
-- own, built CONCURRENTLY (sql/README.md says how).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX tasks_user_id_updated_at_idx ON tasks (user_id, updated_at, id);

-- Not CONCURRENTLY, for the same reason: tasks is empty when this runs.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX tasks_user_id_title_idx ON tasks (user_id, (title COLLATE "und-x-icu"), id);
