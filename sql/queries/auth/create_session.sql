-- name: create_session :val
-- Params: $1 user_id uuid, $2 ttl_seconds integer
-- Sign-in: a new session of user_id (the token's `jti`); deletes up to 10 expired ones of anyone.
-- Index: sessions_expires_at_idx (the expired ones); sessions_pkey.
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
