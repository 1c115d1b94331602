-- name: summarise_tasks :one
-- Params: $1 user_id uuid
-- GET /api/tasks/summary: how many tasks the caller (user_id) has, how many
-- are open, completed, and overdue (open, with a due_at in the past), in
-- one pass over the caller's rows (at most MAX_TASKS_PER_USER).
-- Index: tasks_user_id_created_at_idx, or whichever (user_id, ...) btree
-- the planner finds cheapest: each holds exactly the caller's rows.
SELECT
    count(*) AS total,
    count(*) FILTER (WHERE NOT completed) AS open,
    count(*) FILTER (WHERE completed) AS completed,
    count(*) FILTER (WHERE NOT completed AND due_at < now()) AS overdue
FROM tasks
WHERE user_id = $1::uuid;
