-- Rollback of 0004: deletes every linked account with its tasks (0003's
-- users table cannot hold an account without a password), then restores
-- users_email_lower_key and drops the link columns, constraints and indexes.

-- A rollback removes exactly what its migration created: dropping the
-- indexes and columns is its job, and the linked accounts cannot outlive
-- them. Plain DROP INDEX, not CONCURRENTLY, keeps the rollback one
-- transaction; its lock_timeout bounds the wait for the table's lock.
-- squawk-ignore-file ban-drop-index, require-concurrent-index-deletion
-- squawk-ignore-file ban-drop-column, ban-drop-constraint
-- The restored index and NOT NULLs are 0003's own; users is small and
-- this file runs under its lock_timeout.
-- squawk-ignore-file require-concurrent-index-creation, adding-not-nullable-field

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- ON DELETE CASCADE takes their tasks.
DELETE FROM users
WHERE password_hash IS NULL;

-- Password emails were unique under users_password_email_lower_key, and
-- only password accounts are left.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

DROP INDEX users_password_email_lower_key;

DROP INDEX users_auth_identity_key;

ALTER TABLE users DROP CONSTRAINT users_credentials_check;

ALTER TABLE users DROP CONSTRAINT users_auth_subject_check;

ALTER TABLE users DROP CONSTRAINT users_auth_issuer_check;

ALTER TABLE users DROP COLUMN auth_subject;

ALTER TABLE users DROP COLUMN auth_issuer;

-- Every remaining row has both (users_credentials_check held for it).
ALTER TABLE users ALTER COLUMN email SET NOT NULL;

ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;
