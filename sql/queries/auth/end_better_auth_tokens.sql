-- name: end_better_auth_tokens :val
-- Params: $1 user_id uuid
-- POST /api/auth/signout {"everywhere": true} with a Better Auth token:
-- every token of linked account user_id issued up to this second is
-- refused everywhere within a second; the tokens Better Auth issues after
-- it still work. Returns that second (Unix time), for this worker to
-- refuse the tokens it holds at once; no row when the account is gone.
-- Index: users_pkey.
UPDATE users
SET better_auth_signed_out_at = now()
WHERE
    id = $1::uuid
    AND auth_subject IS NOT NULL
RETURNING floor(extract(EPOCH FROM better_auth_signed_out_at))::bigint AS up_to;
