-- name: end_better_auth_token :exec
-- Params: $1 token_digest bytea, $2 expires_at bigint
-- Sign-out: ends a Better Auth token until expires_at; deletes up to 10 long expired rows.
-- Index: better_auth_ended_tokens_expires_at_idx; better_auth_ended_tokens_pkey.
WITH expired AS (
    DELETE FROM better_auth_ended_tokens
    WHERE token_digest IN (
        SELECT token_digest
        FROM better_auth_ended_tokens
        WHERE expires_at < now() - interval '1 minute'
        ORDER BY expires_at
        LIMIT 10
        FOR UPDATE SKIP LOCKED
    )
)

INSERT INTO better_auth_ended_tokens (token_digest, expires_at)
VALUES ($1::bytea, to_timestamp($2::bigint))
ON CONFLICT (token_digest) DO NOTHING;
