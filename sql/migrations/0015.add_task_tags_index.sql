-- Migration 0015: tasks_tag_keys_idx, the index that serves tag=.
-- depends: 0014.add_task_priority_index
-- transactional: false
--
-- GET /api/tasks?tag=work,home lists the caller's tasks that carry every
-- one of the tags, case-insensitively. This GIN index holds, for each task
-- with tags, its tasks_tag_keys(user_id, tags) (0012): one key per tag,
-- owner and tag together. The tag statements ask for the caller's keys of
-- the wanted tags (`@>`): the index intersects the entries of those keys
-- only, each listing that person's tasks with that tag, so the cost follows
-- the tasks that carry the tags, not the caller's other tasks nor anyone
-- else's; a tag that matches nothing costs one probe.
--
-- Partial (WHERE tags <> '{}'): a task without tags can never match a tag
-- filter, and writing one touches nothing here. fastupdate off: a write
-- with tags inserts its few keys (at most 20) straight into the entry tree,
-- and a search never reads a pending list.
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
DROP INDEX CONCURRENTLY IF EXISTS tasks_tag_keys_idx;

-- Outside a transaction, as above. No IF NOT EXISTS: it would accept an
-- INVALID index left behind and record the migration as applied; the
-- statement above made the name free.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts
CREATE INDEX CONCURRENTLY tasks_tag_keys_idx ON tasks USING gin (tasks_tag_keys(user_id, tags))
WITH (fastupdate = off) WHERE tags <> '{}';
