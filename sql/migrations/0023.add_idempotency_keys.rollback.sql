-- Rollback of 0023: idempotency_keys goes, and every kept answer with it;
-- the previous release ignores Idempotency-Key.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-table

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

DROP TABLE idempotency_keys;
