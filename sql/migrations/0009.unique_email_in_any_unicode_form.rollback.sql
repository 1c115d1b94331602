-- Rollback of 0009: restores users_password_email_lower_key (emails unique
-- regardless of case only) and drops users_password_email_key and the
-- email_duplicate_of column with its check. Accounts 0009 marked as
-- duplicates become ordinary accounts again, able to sign in.

-- A rollback removes exactly what its migration created; plain DROP
-- INDEX, not CONCURRENTLY, keeps it one transaction, and its lock_timeout
-- bounds the wait for the table's lock.
-- squawk-ignore-file ban-drop-index, require-concurrent-index-deletion
-- squawk-ignore-file ban-drop-column
-- The restored index is 0004's own; users is small and this file runs
-- under its lock_timeout.
-- squawk-ignore-file require-concurrent-index-creation

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- Every pair of emails equal in lower() is equal in 0009's rule too, so
-- the unmarked accounts' emails fit this index; a marked one equal to its
-- kept account in lower() did not exist before 0009.
CREATE UNIQUE INDEX users_password_email_lower_key ON users (lower(email))
WHERE password_hash IS NOT NULL;

DROP INDEX users_password_email_key;

-- Dropping the column drops users_email_duplicate_of_check with it.
ALTER TABLE users DROP COLUMN email_duplicate_of;
