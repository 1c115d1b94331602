-- name: get_idempotency_key :one
-- Params: $1 user_id uuid, $2 client_key text
-- The claim a request could not take: its request's hash and, once kept, the answer.
-- Index: idempotency_keys_pkey.
SELECT
    request,
    status,
    content_type,
    body,
    etag,
    location_url
FROM idempotency_keys
WHERE user_id = $1::uuid AND client_key = $2::text;
