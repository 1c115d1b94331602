-- name: change_password :one
-- Params: $1 id uuid, $2 old_hash text, $3 new_hash text, $4 ttl_seconds integer
-- PUT /api/auth/password: new_hash for old_hash, every session ends, one begins; no row: no match.
-- Index: users_pkey; sessions_user_id_idx; sessions_pkey.
WITH changed AS (
    UPDATE users
    SET password_hash = $3::text
    WHERE
        id = $1::uuid
        AND password_hash = $2::text
    RETURNING id, email, name, created_at
),

ended AS (
    DELETE FROM sessions
    WHERE user_id IN (SELECT changed.id FROM changed)
),

started AS (
    INSERT INTO sessions (user_id, expires_at)
    SELECT
        changed.id,
        now() + make_interval(secs => $4::integer) AS expires_at
    FROM changed
    RETURNING id
)

SELECT
    changed.*,
    started.id AS session_id
FROM changed, started;
