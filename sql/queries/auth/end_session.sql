-- name: end_session :exec
-- Params: $1 id uuid, $2 user_id uuid
-- Sign-out: ends session id (the token's `jti`) of account user_id.
-- Index: sessions_pkey.
DELETE FROM sessions
WHERE
    id = $1::uuid
    AND user_id = $2::uuid;
