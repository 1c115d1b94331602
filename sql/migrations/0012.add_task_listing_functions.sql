-- Migration 0012: the two expressions the new task orders and the tag
-- filter are indexed on, each named once.
-- depends: 0011.validate_task_details
--
-- tasks_priority_rank(priority): 1 for 'none', 2 'low', 3 'medium', 4
--   'high'; GET /api/tasks?sort=priority reads tasks in this order (none
--   first), and sort=-priority backward (high first). A plain SQL
--   expression, so the planner inlines it in queries and in the index
--   definition alike (0014).
-- tasks_tag_keys(user_id, tags): one text key per tag, the owner's id, a
--   space and the tag in lower case (lower(), as tasks_tags_check compares
--   tags). GET /api/tasks?tag= asks for the keys of the caller and the
--   wanted tags: each key's GIN entry (0015) lists exactly that person's
--   tasks carrying that tag, so a tag nobody has costs one index probe.
--   The owner's id has a fixed length (36), so no tag can make one key
--   look like another.
--
-- Both read only their arguments (IMMUTABLE), as an index expression must.
-- Creating functions takes no lock on tasks.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE FUNCTION tasks_priority_rank(priority text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_position(ARRAY['none', 'low', 'medium', 'high'], priority);

CREATE FUNCTION tasks_tag_keys(owner uuid, tags text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN array(SELECT owner::text || ' ' || lower(tag) FROM unnest(tags) AS tag);
