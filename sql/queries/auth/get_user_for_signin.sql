-- name: get_user_for_signin :one
-- Params: $1 email text
-- The password account with this email, in any letter case or Unicode
-- form, with its password hash. Accounts linked to Better Auth have no
-- password and never match, nor do the duplicates migration 0009 set
-- aside (email_duplicate_of).
-- Index: users_password_email_key (lower(normalize(email, NFKC)),
-- password accounts).
SELECT
    id,
    email,
    name,
    created_at,
    password_hash
FROM users
WHERE
    lower(normalize(email, NFKC)) = lower(normalize($1::text, NFKC))  -- noqa: CP02
    AND password_hash IS NOT NULL
    AND email_duplicate_of IS NULL;
