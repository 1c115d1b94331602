-- name: session_is_live :val
-- Params: $1 id uuid, $2 user_id uuid
-- TRUE while session id (a token's `jti`) of account user_id (its `sub`)
-- has not been ended (signed out, a password change, the account deleted);
-- no row once it has. Each worker asks at most every half second a token
-- (service/auth/tokens.py).
-- Index: sessions_pkey.
SELECT TRUE AS live
FROM sessions
WHERE
    id = $1::uuid
    AND user_id = $2::uuid;
