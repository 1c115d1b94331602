-- name: rename_user :one
-- Params: $1 id uuid, $2 name text
-- PATCH /api/auth/me: account id gets a new name; no row: the account is gone.
-- Index: users_pkey.
UPDATE users
SET name = $2::text
WHERE id = $1::uuid
RETURNING id, email, name, created_at;
