-- Rollback of 0014: drops tasks_user_id_priority_idx,
-- concurrently (reads and writes go on). Sorting by priority
-- then reads every task of the caller and sorts them.

-- A rollback removes exactly what its migration created; yoyo runs it
-- outside a transaction, like its migration, so CONCURRENTLY works here
-- and no lock blocks traffic. No session settings, for the reason 0007
-- gives. IF EXISTS: yoyo also runs this after a failed build, when the
-- index may not exist.
-- squawk-ignore-file ban-drop-index, ban-concurrent-index-creation-in-transaction
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_priority_idx;
