-- Migration 0006: the pg_trgm extension, for searching tasks.
-- depends: 0005.count_tasks_per_user
--
-- pg_trgm indexes text by its three-character pieces (trigrams), so a GIN
-- index can answer `lower(title) LIKE '%...%'` without reading every row;
-- 0007 builds that index. A PostgreSQL contrib module, trusted (the
-- database owner may create it, no superuser needed) and available on Neon.
-- IF NOT EXISTS: a DBA may have created it already.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE EXTENSION IF NOT EXISTS pg_trgm;
