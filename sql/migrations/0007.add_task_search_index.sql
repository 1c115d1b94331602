-- Migration 0007: tasks_user_id_text_trgm_idx, the index that serves q.
-- depends: 0006.add_pg_trgm
-- transactional: false
--
-- GET /api/tasks?q= finds the caller's tasks whose title or description
-- contains q, case-insensitively (lower() on both sides). This GIN index
-- holds, for every task, its owner as a one-element array (ARRAY[user_id],
-- GIN's own array_ops) and the trigrams of lower(title) and
-- lower(description) (pg_trgm), so the listing's q statements read only the
-- caller's entries for q's trigrams: a search that matches nothing costs
-- about what a plain page does, however many tasks the caller or anyone
-- else has. The owner is an array, not user_id itself, so that the q
-- statements' `ARRAY[user_id] @> ARRAY[$1]` is something only this index
-- answers: with `user_id = $1` the planner may read the caller's rows off a
-- btree index and filter them by q instead, which it does in generic plans
-- when the average user has few tasks (a big user then pays for every
-- task). A q without 3 letters or digits in a row may have no trigram, and
-- a GIN search for none reads every entry of the column: the sort's own
-- index serves it (sql/README.md, list_tasks).
--
-- fastupdate with a 64 kB pending list (the least PostgreSQL allows):
-- a write appends its entries to the list, and the write that fills it
-- merges them into the index, sorted, in one pass (a few milliseconds);
-- every search also reads the whole list, at most 8 pages. Measured with
-- bench/ab.py, create and patch kept about 95% of their throughput this
-- way, and 74-84% with fastupdate off (each write then inserts every
-- trigram of its title and description one by one); the default 4 MB list
-- would make every search read up to 512 pages and some write merge them.
--
-- On a populated table: built CONCURRENTLY, outside a transaction, so reads
-- and writes of tasks go on while it builds; it takes no lock that blocks
-- them, waits for transactions already running to end, and reads the table
-- twice (minutes on millions of rows, with writes a little slower
-- meanwhile). No session settings: through a transaction pooler they would
-- stay on whichever server connection ran them; the build needs no
-- lock_timeout (its lock never queues the application's traffic) and is
-- given no statement_timeout (it takes as long as the table needs). A role
-- with its own statement_timeout must allow the build that long. A build
-- that fails (cancelled, out of disk, a deadlock) leaves an INVALID index
-- of this name: yoyo drops it at once (the paired step of the rollback),
-- and the first statement below drops it on the next `todo-api migrate`
-- if that did not happen, so running migrate again is the whole recovery.

-- No lock_timeout or statement_timeout in this file, on purpose: session
-- settings would outlive it on a transaction pooler's server connection,
-- and the header says why the build needs neither.
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

-- yoyo runs this file outside a transaction (`-- transactional: false`),
-- which squawk cannot see. An INVALID index left by a failed build is
-- exactly what this drops (a valid one exists only if this migration is
-- not recorded as applied, and is then rebuilt).
-- squawk-ignore ban-concurrent-index-creation-in-transaction, ban-drop-index
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_text_trgm_idx;

-- Outside a transaction, as above. No IF NOT EXISTS: it would accept an
-- INVALID index left behind and record the migration as applied; the
-- statement above made the name free.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts
CREATE INDEX CONCURRENTLY tasks_user_id_text_trgm_idx ON tasks USING gin (
    (ARRAY[user_id]), lower(title) gin_trgm_ops, lower(description) gin_trgm_ops
) WITH (fastupdate = on, gin_pending_list_limit = 64);
