-- Rollback of 0006: drops the pg_trgm extension. It fails (and drops
-- nothing) while any object still uses it, such as 0007's index, or one a
-- DBA made for something else.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- A rollback removes exactly what its migration created, and PostgreSQL
-- refuses to drop an extension something still uses (RESTRICT).
-- squawk-ignore-file ban-drop-extension
DROP EXTENSION IF EXISTS pg_trgm;
