-- Rollback of 0021: list_tasks() goes; the previous release runs the
-- listing as a statement of its own.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-function

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP FUNCTION list_tasks(
    uuid, text, boolean, text, text[], timestamptz, timestamptz, boolean,
    timestamptz, text, uuid, integer, text, text[]
);
