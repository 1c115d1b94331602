-- name: link_better_auth_user :val
-- Params: $1 issuer text, $2 subject text, $3 email text, $4 name text
-- The id of the account linked to Better Auth user subject (the token's
-- `sub`) of issuer (its `iss`), created on that user's first valid token
-- with email (NULL when the token carries none) and name, both from the
-- token's claims. Never matched by email. Race-safe: when two first
-- requests insert at once, the loser's ON CONFLICT waits for the winner and
-- its no-op DO UPDATE returns the winner's row, so both get the one account.
-- Index: users_auth_identity_key (auth_issuer, auth_subject), for the lookup
-- and the conflict.
WITH found AS (
    SELECT id
    FROM users
    WHERE
        auth_issuer = $1::text
        AND auth_subject = $2::text
),

created AS (
    INSERT INTO users (auth_issuer, auth_subject, email, name)
    SELECT
        $1::text,
        $2::text,
        $3::text,
        $4::text
    WHERE NOT EXISTS (SELECT FROM found)
    ON CONFLICT (auth_issuer, auth_subject) WHERE auth_subject IS NOT NULL
    DO UPDATE SET auth_subject = excluded.auth_subject
    RETURNING id
)

SELECT id FROM found
UNION ALL
SELECT id FROM created;
