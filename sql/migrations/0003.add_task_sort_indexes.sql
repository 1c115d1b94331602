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

-- Not CONCURRENTLY: this ships with 0002 in the first release, so tasks has
-- no rows when it runs. An index on a populated table gets a migration of its
-- own with `-- transactional: false` and CREATE INDEX CONCURRENTLY.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX tasks_user_id_updated_at_idx ON tasks (user_id, updated_at, id);

-- squawk-ignore require-concurrent-index-creation
CREATE INDEX tasks_user_id_title_idx ON tasks (user_id, (title COLLATE "und-x-icu"), id);
