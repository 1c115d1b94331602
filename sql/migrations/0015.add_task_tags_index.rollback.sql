-- Rollback of 0015: drops tasks_tag_keys_idx,
-- concurrently (reads and writes go on). tag= then filters
-- the caller's tasks as they are read in the requested order.

-- A rollback removes exactly what its migration created; yoyo runs it
-- outside a transaction, like its migration, so CONCURRENTLY works here
-- and no lock blocks traffic. No session settings, for the reason 0007
-- gives. IF EXISTS: yoyo also runs this after a failed build, when the
-- index may not exist.
-- squawk-ignore-file ban-drop-index, ban-concurrent-index-creation-in-transaction
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
DROP INDEX CONCURRENTLY IF EXISTS tasks_tag_keys_idx;
