-- Migration 0016: tasks_tags_valid() and tasks_tag_keys() in PL/pgSQL.
-- depends: 0015.add_task_tags_index
--
-- Why: written in SQL, neither function can be inlined (each holds a
-- subquery), and PostgreSQL pays for that on every statement, not once.
-- Every INSERT and UPDATE of tasks prepares its CHECKs afresh, and the
-- planner then reads tasks_tags_valid()'s whole SQL body (tasks_tags_check,
-- 0010) only to find it cannot inline it: ~110 us of PostgreSQL CPU on
-- every create and patch, with tags or without (pgbench, one prepared
-- INSERT a transaction: 421 us; 312 us in PL/pgSQL; 236 us before 0010).
-- tasks_tag_keys() (tasks_tag_keys_idx, 0015, and the tag= listings) is
-- parsed and planned again in every statement that calls it; PL/pgSQL keeps
-- its plan for the session.
--
-- What: the same two functions, with the same arguments and the same result
-- for every input, in PL/pgSQL, which the planner never tries to inline.
-- CREATE OR REPLACE keeps each function's OID, so tasks_tags_check and
-- tasks_tag_keys_idx use the new bodies with nothing to rebuild or
-- revalidate (the results are equal). Takes no lock on tasks; a session
-- that ran the old body uses the new one from its next statement.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE OR REPLACE FUNCTION tasks_tags_valid(tags text[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN cardinality(tags) <= 20
        AND array_position(tags, NULL) IS NULL
        AND (
            SELECT
                bool_and(
                    char_length(tag) BETWEEN 1 AND 40
                    AND tag = btrim(tag)
                    AND tag ~ '[^[:space:]]'
                )
                AND count(DISTINCT lower(tag)) = count(*)
            FROM unnest(tags) AS tag
        ) IS NOT FALSE;
END;
$$;

CREATE OR REPLACE FUNCTION tasks_tag_keys(owner uuid, tags text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN array(SELECT owner::text || ' ' || lower(tag) FROM unnest(tags) AS tag);
END;
$$;
