-- name: claim_idempotency_key :val
-- Params: $1 user_id uuid, $2 client_key text, $3 request bytea, $4 ttl_seconds float8,
--     $5 abandoned_seconds float8
-- Claims user_id's client_key for this request: a new row, or one expired (older
-- than ttl_seconds) or abandoned (still running after abandoned_seconds, its
-- process gone), taken over. True when claimed; NULL when the client_key is held.
-- Index: idempotency_keys_pkey.
INSERT INTO idempotency_keys AS kept (user_id, client_key, request)
VALUES ($1::uuid, $2::text, $3::bytea)
ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
    SET
        request = excluded.request,
        created_at = now(),
        status = NULL,
        content_type = NULL,
        body = NULL,
        etag = NULL,
        location_url = NULL
    WHERE
    kept.created_at < now() - make_interval(secs => $4::float8)
    OR (
        kept.status IS NULL
        AND kept.created_at < now() - make_interval(secs => $5::float8)
    )
RETURNING TRUE;
