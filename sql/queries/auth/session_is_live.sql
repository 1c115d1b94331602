-- name: session_is_live :val
-- Params: $1 id uuid, $2 user_id uuid
-- TRUE while session id of account user_id has not been ended; no row once it has.
-- Index: sessions_pkey.
SELECT TRUE AS live
FROM sessions
WHERE
    id = $1::uuid
    AND user_id = $2::uuid;
