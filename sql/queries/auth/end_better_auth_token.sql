-- name: end_better_auth_token :exec
-- Params: $1 token_digest bytea, $2 expires_at bigint
-- POST /api/auth/signout with a Better Auth token: ends that token (named
-- by token_digest, the SHA-256 of its signed part) until it expires
-- (expires_at, its `exp`); it is refused everywhere within a second. Also
-- deletes up to 10 rows whose token expired over a minute ago (past the
-- verifier's leeway on `exp`), oldest first, skipping rows another
-- transaction holds, so the table is cleaned without a cron job: each
-- sign-out removes more than it adds while any are left.
-- Index: better_auth_ended_tokens_expires_at_idx (the expired ones);
-- better_auth_ended_tokens_pkey (the new row).
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
