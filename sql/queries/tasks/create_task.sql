-- name: create_task :one
-- Params: $1 user_id uuid, $2 title text, $3 description text,
--     $4 completed boolean
-- Create a task for the caller (user_id): title, description (NULL for
-- none), completed. A user_id that no longer exists raises
-- tasks_user_id_fkey (the service answers 401: the account is gone).
-- Index: tasks_pkey (new row); tasks_user_id_fkey checks users_pkey.
INSERT INTO tasks (user_id, title, description, completed)
VALUES ($1::uuid, $2::text, $3::text, $4::boolean)
RETURNING id, user_id, title, description, completed, version, created_at, updated_at;
