-- name: better_auth_token_is_live :val
-- Params: $1 id uuid, $2 issued_at bigint, $3 token_digest bytea
-- Whether a Better Auth token of account id is not signed out; no row: the account is gone.
-- Index: users_pkey; better_auth_ended_tokens_pkey.
SELECT
    (
        better_auth_signed_out_at IS NULL
        OR better_auth_signed_out_at < to_timestamp($2::bigint)
    )
    AND NOT EXISTS (
        SELECT
        FROM better_auth_ended_tokens
        WHERE better_auth_ended_tokens.token_digest = $3::bytea
    ) AS live
FROM users
WHERE id = $1::uuid;
