-- name: create_user :one
-- Params: $1 email text, $2 password_hash text, $3 name text, $4 ttl_seconds integer
-- Sign-up: a password account and its first session; a taken email raises users_password_email_key.
-- Index: users_password_email_key enforces the uniqueness; sessions_pkey.
WITH created AS (
    INSERT INTO users (email, password_hash, name)
    VALUES ($1::text, $2::text, $3::text)
    RETURNING id, email, name, created_at
),

started AS (
    INSERT INTO sessions (user_id, expires_at)
    VALUES ((SELECT created.id FROM created), now() + make_interval(secs => $4::integer))
    RETURNING id
)

SELECT
    created.*,
    started.id AS session_id
FROM created, started;
