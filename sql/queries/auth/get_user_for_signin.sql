-- name: get_user_for_signin :one
-- The account with this email ($1), in any case, with its password hash.
-- Index: users_email_lower_key (lower(email)).
SELECT
    id,
    email,
    name,
    created_at,
    password_hash
FROM users
WHERE lower(email) = lower($1::text);
