-- Rollback of 0019: drops better_auth_ended_tokens and
-- users.better_auth_signed_out_at. Under the previous release, which knows
-- neither, a Better Auth token that was signed out here works again until
-- its `exp` (15 minutes by default), and sign-out answers 403 for it.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- A rollback removes exactly what its migration created.
-- squawk-ignore ban-drop-table
DROP TABLE better_auth_ended_tokens;

-- The same: the column is 0019's own.
-- squawk-ignore ban-drop-column
ALTER TABLE users DROP COLUMN better_auth_signed_out_at;
