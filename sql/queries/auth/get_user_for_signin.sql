-- name: get_user_for_signin :one
-- Params: $1 email text
-- The password account with this email, in any case, with its password
-- hash. Accounts linked to Better Auth have no password and never match.
-- Index: users_password_email_lower_key (lower(email), password accounts).
SELECT
    id,
    email,
    name,
    created_at,
    password_hash
FROM users
WHERE
    lower(email) = lower($1::text)
    AND password_hash IS NOT NULL;
