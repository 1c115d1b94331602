-- Rollback of 0001: drops the users table, its constraints and index.
-- Destroys every account; 0002 must be rolled back first (tasks reference
-- users).

-- A rollback removes exactly what its migration created: dropping the
-- table and its index is its job. Plain DROP INDEX, not CONCURRENTLY,
-- keeps the rollback one transaction; its lock_timeout bounds the wait
-- for the table's lock.
-- squawk-ignore-file ban-drop-table, ban-drop-index
-- squawk-ignore-file require-concurrent-index-deletion

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP INDEX users_email_lower_key;

DROP TABLE users;
