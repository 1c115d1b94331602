-- Rollback of 0022: api_timestamp() goes; the previous release renders
-- listed tasks in Python.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-function

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP FUNCTION api_timestamp(timestamptz);
