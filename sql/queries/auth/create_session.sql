-- name: create_session :val
-- Params: $1 user_id uuid, $2 ttl_seconds integer
-- Sign-in: a new session of account user_id, expiring in ttl_seconds
-- (JWT_TTL_SECONDS); returns its id, the token's `jti`. Also deletes up to
-- 10 expired sessions of anyone, oldest first (skipping rows another
-- transaction holds), so the table is cleaned without a cron job: each
-- sign-in removes more than it adds while any are left. An account deleted
-- since the password check raises sessions_user_id_fkey.
-- Index: sessions_expires_at_idx (the expired ones); sessions_pkey (new
-- row); sessions_user_id_fkey checks users_pkey.
WITH expired AS (
    DELETE FROM sessions
    WHERE id IN (
        SELECT id
        FROM sessions
        WHERE expires_at < now()
        ORDER BY expires_at
        LIMIT 10
        FOR UPDATE SKIP LOCKED
    )
)

INSERT INTO sessions (user_id, expires_at)
VALUES ($1::uuid, now() + make_interval(secs => $2::integer))
RETURNING id;
