-- Rollback of 0003: drops the updated_at and title list indexes. Listing by
-- those orders still works without them, by sorting the user's rows.

-- A rollback removes exactly what its migration created: dropping the two
-- indexes is its job. Plain DROP INDEX, not CONCURRENTLY, keeps the
-- rollback one transaction; its lock_timeout bounds the wait for the
-- table's lock.
-- squawk-ignore-file ban-drop-index, require-concurrent-index-deletion

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP INDEX tasks_user_id_title_idx;

DROP INDEX tasks_user_id_updated_at_idx;
