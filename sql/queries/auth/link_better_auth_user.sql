-- name: link_better_auth_user :one
-- Params: $1 issuer text, $2 subject text, $3 email text, $4 name text,
--     $5 issued_at bigint, $6 token_digest bytea
-- The account linked to (issuer, subject), made unless it departed since issued_at; live or not.
-- Index: users_auth_identity_key; better_auth_departures_pkey; better_auth_ended_tokens_pkey.
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
