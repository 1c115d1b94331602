-- name: get_user_credentials :one
-- Params: $1 id uuid
-- Account id with its password hash (NULL: linked to Better Auth), to check a password.
-- Index: users_pkey.
SELECT
    id,
    email,
    name,
    created_at,
    password_hash
FROM users
WHERE id = $1::uuid;
