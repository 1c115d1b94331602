-- Migration 0025: tasks_user_id_change_xid_idx, what a sync reads.
-- depends: 0024.add_task_change_feed
-- transactional: false
--
-- GET /api/tasks/changes reads the caller's tasks in (change_xid, id)
-- order from the token's position on (list_changes.sql): a sync with a few
-- changes reads a few index entries, however many tasks the account has.
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
-- exactly what this drops.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, ban-drop-index
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_change_xid_idx;

-- Outside a transaction, as above. No IF NOT EXISTS: it would accept an
-- INVALID index left behind; the statement above made the name free.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts
CREATE INDEX CONCURRENTLY tasks_user_id_change_xid_idx ON tasks (user_id, change_xid, id);
