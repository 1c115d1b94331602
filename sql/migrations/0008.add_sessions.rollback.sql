-- Rollback of 0008: drops sessions and better_auth_departures with their
-- indexes. Under the previous release, which knows neither, every token
-- issued since 0008 works until its `exp`, signed out or not, and a
-- deleted Better Auth account's old token makes a new account.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- A rollback removes exactly what its migration created.
-- squawk-ignore ban-drop-table
DROP TABLE better_auth_departures;

-- The same: sessions is 0008's own table.
-- squawk-ignore ban-drop-table
DROP TABLE sessions;
