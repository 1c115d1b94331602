-- name: get_user_by_id :one
-- Params: $1 id uuid
-- The account (id) a verified token names, with its password hash (NULL: linked to Better Auth).
-- Index: users_pkey.
SELECT
    id,
    email,
    name,
    created_at,
    password_hash
FROM users
WHERE id = $1::uuid;
