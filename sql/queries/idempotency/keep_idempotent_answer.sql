-- name: keep_idempotent_answer :exec
-- Params: $1 user_id uuid, $2 client_key text, $3 status integer, $4 content_type text,
--     $5 body bytea, $6 etag text, $7 location_url text, $8 ttl_seconds float8
-- The answer to user_id's claimed client_key, kept for its retries; and up to
-- 20 keys of anyone's older than ttl_seconds deleted, so that every kept
-- answer clears at least as many as it adds.
-- Index: idempotency_keys_pkey; idempotency_keys_created_at_idx.
WITH expired AS (
    DELETE FROM idempotency_keys
    WHERE (user_id, client_key) IN (
        SELECT
            stale.user_id,
            stale.client_key
        FROM idempotency_keys AS stale
        WHERE stale.created_at < now() - make_interval(secs => $8::float8)
        ORDER BY stale.created_at
        LIMIT 20
    )
)

UPDATE idempotency_keys
SET
    status = $3::integer,
    content_type = $4::text,
    body = $5::bytea,
    etag = $6::text,
    location_url = $7::text
WHERE user_id = $1::uuid AND client_key = $2::text AND status IS NULL;
