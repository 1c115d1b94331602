-- name: create_task :one
-- Create a task for the caller ($1): $2 title, $3 description (NULL for none),
-- $4 completed. A user id that no longer exists raises tasks_user_id_fkey (the
-- service answers 401: the account is gone).
-- Index: tasks_pkey (new row); tasks_user_id_fkey checks users_pkey.
INSERT INTO tasks (user_id, title, description, completed)
VALUES ($1::uuid, $2::text, $3::text, $4::boolean)
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
