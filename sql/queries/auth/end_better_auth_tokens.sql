-- name: end_better_auth_tokens :val
-- Params: $1 user_id uuid
-- Sign-out everywhere: ends user_id's Better Auth tokens issued up to now; no row: account gone.
-- Index: users_pkey.
UPDATE users
SET better_auth_signed_out_at = now()
WHERE
    id = $1::uuid
    AND auth_subject IS NOT NULL
RETURNING floor(extract(EPOCH FROM better_auth_signed_out_at))::bigint AS up_to;
