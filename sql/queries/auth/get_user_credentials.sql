-- name: get_user_credentials :one
-- Params: $1 id uuid
-- Account id's email, name and password hash (NULL for an account linked
-- to Better Auth), to check the password a password change or an account
-- deletion must present. No row: the account is gone.
-- Index: users_pkey.
SELECT
    id,
    email,
    name,
    created_at,
    password_hash
FROM users
WHERE id = $1::uuid;
