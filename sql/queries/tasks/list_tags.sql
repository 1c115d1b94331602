-- name: list_tags :many
-- Params: $1 user_id uuid
-- The caller's tags (case-insensitively, as spelled first) by use, with counts.
-- Index: tasks_user_id_created_at_idx, or any (user_id, ...) btree.
SELECT
    (array_agg(tagged.tag ORDER BY tasks.created_at, tasks.id))[1] AS name,
    count(*) AS count
FROM tasks
CROSS JOIN LATERAL unnest(tasks.tags) AS tagged (tag)
WHERE tasks.user_id = $1::uuid
GROUP BY lower(tagged.tag)
ORDER BY count DESC, name ASC;
