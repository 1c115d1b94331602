-- name: get_user_for_signin :one
-- Params: $1 email text
-- Always one row: email_key, the database's own normalised form of the
-- email (what the sign-in lockout counts an address with no account
-- under), and the password account with that form, in any letter case or
-- Unicode spelling, with its password hash; its columns are NULL when
-- there is none. Accounts linked to Better Auth have no password and never
-- match, nor do the duplicates migration 0009 set aside
-- (email_duplicate_of).
-- Index: users_password_email_key (lower(normalize(email, NFKC)),
-- password accounts).
SELECT
    sent.email_key,
    u.id,
    u.email,
    u.name,
    u.created_at,
    u.password_hash
FROM (SELECT lower(normalize($1::text, NFKC)) AS email_key) AS sent  -- noqa: CP02
LEFT JOIN users AS u
    ON
        lower(normalize(u.email, NFKC)) = sent.email_key  -- noqa: CP02, RF02
        AND u.password_hash IS NOT NULL
        AND u.email_duplicate_of IS NULL;
