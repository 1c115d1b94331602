-- name: summarise_tasks :one
-- Params: $1 user_id uuid
-- GET /api/tasks/summary: total, open, completed and overdue, in one pass.
-- Index: tasks_user_id_created_at_idx, or any (user_id, ...) btree.
SELECT
    count(*) AS total,
    count(*) FILTER (WHERE NOT completed) AS open,
    count(*) FILTER (WHERE completed) AS completed,
    count(*) FILTER (WHERE NOT completed AND due_at < now()) AS overdue
FROM tasks
WHERE user_id = $1::uuid;
