-- name: better_auth_token_is_live :val
-- Params: $1 id uuid, $2 issued_at bigint, $3 token_digest bytea
-- Whether a Better Auth token of account id may still be used: TRUE while
-- it is; FALSE once it was signed out, alone (its token_digest is in
-- better_auth_ended_tokens) or everywhere at or after the second it was
-- issued (issued_at, its `iat`); no row once the account is gone. Each
-- worker asks at most every half second a token (service/auth/tokens.py).
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
