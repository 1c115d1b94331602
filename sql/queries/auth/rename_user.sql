-- name: rename_user :one
-- Params: $1 id uuid, $2 name text
-- PATCH /api/auth/me: the caller's (id) account gets a new name; returns
-- the account as GET /api/auth/me does. No row: the account is gone (401).
-- Index: users_pkey.
UPDATE users
SET name = $2::text
WHERE id = $1::uuid
RETURNING id, email, name, created_at;
