-- Rollback of 0025: drops tasks_user_id_change_xid_idx, concurrently
-- (reads and writes go on). A sync then reads every task of the caller.

-- A rollback removes exactly what its migration created; yoyo runs it
-- outside a transaction, like its migration. No session settings, for the
-- reason 0007 gives. IF EXISTS: yoyo also runs this after a failed build.
-- squawk-ignore-file ban-drop-index, ban-concurrent-index-creation-in-transaction
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_change_xid_idx;
