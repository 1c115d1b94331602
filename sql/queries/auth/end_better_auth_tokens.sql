-- name: end_better_auth_tokens :val
-- Params: $1 user_id uuid
-- Sign-out everywhere with a Better Auth token: ends every token of linked
-- account user_id issued up to now; returns that second; no row: account gone.
-- Index: users_pkey.
UPDATE users
SET better_auth_signed_out_at = now()
WHERE
    id = $1::uuid
    AND auth_subject IS NOT NULL
RETURNING floor(extract(EPOCH FROM better_auth_signed_out_at))::bigint AS up_to;
