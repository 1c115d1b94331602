-- Migration 0014: tasks_user_id_priority_idx, for sort=priority and
-- sort=-priority.
-- depends: 0013.add_task_due_at_index
-- transactional: false
--
-- GET /api/tasks?sort=priority lists the caller's tasks none, low, medium,
-- high (tasks_priority_rank(), 0012), ties by id: read forward off this
-- index within the caller's rows, from the keyset cursor on; sort=-priority
-- (high first) reads it backward. A deep page costs what the first does.
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
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_priority_idx;

-- Outside a transaction, as above. No IF NOT EXISTS: it would accept an
-- INVALID index left behind and record the migration as applied; the
-- statement above made the name free.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts
CREATE INDEX CONCURRENTLY tasks_user_id_priority_idx ON tasks (
    user_id, (tasks_priority_rank(priority)), id
);
