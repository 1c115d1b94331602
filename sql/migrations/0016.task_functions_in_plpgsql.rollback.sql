-- Rollback of 0016: tasks_tags_valid() and tasks_tag_keys() back in SQL,
-- as 0010 and 0012 wrote them (same results; see 0016 for the cost).

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE OR REPLACE FUNCTION tasks_tags_valid(tags text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN
cardinality(tags) <= 20
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

CREATE OR REPLACE FUNCTION tasks_tag_keys(owner uuid, tags text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN array(SELECT owner::text || ' ' || lower(tag) FROM unnest(tags) AS tag);
