-- name: list_tags :many
-- Params: $1 user_id uuid
-- GET /api/tags: the caller's tags (case-insensitive, spelled as on its oldest
-- task) with how many tasks carry each, most used first.
-- Index: tasks_user_id_created_at_idx, or any (user_id, ...) btree.
SELECT
    (array_agg(tagged.tag ORDER BY tasks.created_at, tasks.id))[1] AS name,
    count(*) AS count
FROM tasks
CROSS JOIN LATERAL unnest(tasks.tags) AS tagged (tag)
WHERE tasks.user_id = $1::uuid
GROUP BY lower(tagged.tag)
ORDER BY count DESC, name ASC;
