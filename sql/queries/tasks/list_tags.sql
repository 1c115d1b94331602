-- name: list_tags :many
-- Params: $1 user_id uuid
-- GET /api/tags: the caller's (user_id) tags with how many of their tasks
-- carry each, most used first, then by name. Tags that differ only in case
-- are one (lower(), as tasks_tags_check compares them within a task); its
-- name is the spelling on the caller's oldest task that has it. Reads every
-- task of the caller that has tags (at most MAX_TASKS_PER_USER).
-- Index: tasks_user_id_created_at_idx, or whichever (user_id, ...) btree
-- the planner finds cheapest: each holds exactly the caller's rows.
SELECT
    (array_agg(tagged.tag ORDER BY tasks.created_at, tasks.id))[1] AS name,
    count(*) AS count
FROM tasks
CROSS JOIN LATERAL unnest(tasks.tags) AS tagged (tag)
WHERE tasks.user_id = $1::uuid
GROUP BY lower(tagged.tag)
ORDER BY count DESC, name ASC;
