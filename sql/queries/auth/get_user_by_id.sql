-- name: get_user_by_id :one
-- Params: $1 id uuid
-- The account (id) a verified token names, for GET /api/auth/me.
-- Index: users_pkey.
SELECT
    id,
    email,
    name,
    created_at
FROM users
WHERE id = $1::uuid;
