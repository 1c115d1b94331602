-- name: link_better_auth_user :one
-- Params: $1 issuer text, $2 subject text, $3 email text, $4 name text,
--     $5 issued_at bigint, $6 token_digest bytea
-- The id of the account linked to Better Auth user subject (the token's
-- `sub`) of issuer (its `iss`), created on that user's first valid token
-- with email (NULL when the token carries none) and name, both from the
-- token's claims. Never matched by email. No row when no account is linked
-- and the account deleted itself (better_auth_departures) in or after the
-- second the token was issued (issued_at, its `iat`): a token from before
-- a deletion makes no new account. live is FALSE when this token was
-- signed out, as better_auth_token_is_live says (token_digest, issued_at),
-- so a worker that never saw it refuses it too. Race-safe: when two first
-- requests insert at once, the loser's ON CONFLICT waits for the winner and
-- its no-op DO UPDATE returns the winner's row, so both get the one account.
-- Index: users_auth_identity_key (auth_issuer, auth_subject), for the lookup
-- and the conflict; better_auth_departures_pkey;
-- better_auth_ended_tokens_pkey.
WITH found AS (
    SELECT
        id,
        better_auth_signed_out_at
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
    WHERE
        NOT EXISTS (SELECT FROM found)
        AND NOT EXISTS (
            SELECT
            FROM better_auth_departures
            WHERE
                auth_issuer = $1::text
                AND auth_subject = $2::text
                AND departed_at >= to_timestamp($5::bigint)
        )
    ON CONFLICT (auth_issuer, auth_subject) WHERE auth_subject IS NOT NULL
    DO UPDATE SET auth_subject = excluded.auth_subject
    RETURNING id
)

SELECT
    found.id,
    (
        found.better_auth_signed_out_at IS NULL
        OR found.better_auth_signed_out_at < to_timestamp($5::bigint)
    )
    AND NOT EXISTS (
        SELECT
        FROM better_auth_ended_tokens
        WHERE better_auth_ended_tokens.token_digest = $6::bytea
    ) AS live
FROM found
UNION ALL
SELECT
    created.id,
    TRUE AS live
FROM created;
