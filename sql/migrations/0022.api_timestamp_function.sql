-- Migration 0022: api_timestamp(), a timestamp as the API writes it.
-- depends: 0021.list_tasks_function
--
-- list_tasks.sql renders each listed task as the API's JSON in the
-- database, so the service joins strings instead of turning every row into
-- Python objects and back. api_timestamp() writes a timestamptz exactly as
-- the service's own JSON does (service/jsonio.py): UTC, a Z, and six
-- digits of microseconds unless there are none, e.g.
-- 2026-12-07T14:17:23.291880Z or 2026-12-07T14:17:23Z; NULL stays NULL.
-- STABLE (to_char is) and a single expression, so PostgreSQL inlines it
-- into the statement that calls it: no function call per row.
-- Parameters: $1 timestamptz. Index: none (it reads no table).

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE FUNCTION api_timestamp(timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT replace(
        to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z'
    )
$$;
