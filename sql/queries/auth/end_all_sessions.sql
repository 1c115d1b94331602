-- name: end_all_sessions :exec
-- Params: $1 user_id uuid
-- POST /api/auth/signout {"everywhere": true}: ends every session of
-- account user_id; all its tokens are refused everywhere within a second.
-- Index: sessions_user_id_idx.
DELETE FROM sessions
WHERE user_id = $1::uuid;
