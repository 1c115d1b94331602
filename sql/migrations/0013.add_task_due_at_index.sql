-- Migration 0013: tasks_user_id_due_at_idx, for sort=due_at and -due_at.
-- depends: 0012.add_task_listing_functions
-- transactional: false
--
-- GET /api/tasks?sort=due_at lists the caller's tasks soonest due first,
-- tasks without a due_at last, ties by id. A NULL due_at is indexed as
-- 'infinity' (the API accepts no year past 9998, so no real due_at is
-- 'infinity'), which puts those tasks last, in id order; the page is read
-- forward off this index within the caller's rows, from the keyset cursor
-- on, so a deep page costs what the first does. sort=-due_at (latest due
-- first, tasks without a due_at last too) reads it backward from just
-- below the 'infinity' entries, then those entries forward: one index
-- for both orders, so a write pays for one (sql/README.md, list_tasks).
--
-- On a populated table: built CONCURRENTLY, outside a transaction, so reads
-- and writes of tasks go on while it builds (0007's header has the
-- details); a failed build's INVALID index is dropped by yoyo at once, or
-- by the first statement below on the next `todo-api migrate`.

-- No lock_timeout or statement_timeout in this file, on purpose: session
-- settings would outlive it on a transaction pooler's server connection,
-- and 0007's header says why the build needs neither.
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

-- yoyo runs this file outside a transaction (`-- transactional: false`),
-- which squawk cannot see. An INVALID index left by a failed build is
-- exactly what this drops (a valid one exists only if this migration is
-- not recorded as applied, and is then rebuilt).
-- squawk-ignore ban-concurrent-index-creation-in-transaction, ban-drop-index
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_due_at_idx;

-- Outside a transaction, as above. No IF NOT EXISTS: it would accept an
-- INVALID index left behind and record the migration as applied; the
-- statement above made the name free.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts
CREATE INDEX CONCURRENTLY tasks_user_id_due_at_idx ON tasks (
    user_id, (coalesce(due_at, 'infinity')), id
);
