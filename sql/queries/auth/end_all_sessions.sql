-- name: end_all_sessions :exec
-- Params: $1 user_id uuid
-- Sign-out everywhere: ends every session of account user_id.
-- Index: sessions_user_id_idx.
DELETE FROM sessions
WHERE user_id = $1::uuid;
