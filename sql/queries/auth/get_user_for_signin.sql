-- name: get_user_for_signin :one
-- Params: $1 email text
-- Always one row: the email's normalised form (email_key) and its password account, if any.
-- Index: users_password_email_key.
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
