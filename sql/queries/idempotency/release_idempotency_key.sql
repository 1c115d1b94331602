-- name: release_idempotency_key :exec
-- Params: $1 user_id uuid, $2 client_key text
-- Lets user_id's claimed client_key go: its answer is not kept (a 409, 412,
-- 429 or 5xx, or a 4xx that depends on more than the request), so a retry
-- runs again.
-- Index: idempotency_keys_pkey.
DELETE FROM idempotency_keys
WHERE user_id = $1::uuid AND client_key = $2::text AND status IS NULL;
