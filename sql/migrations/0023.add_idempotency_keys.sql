-- Migration 0023: idempotency_keys, the answers kept for Idempotency-Key.
-- depends: 0022.api_timestamp_function
--
-- A create, PATCH or completion sent with an Idempotency-Key header
-- (API.md "Retries") claims (user_id, client_key) here before it runs, with the
-- SHA-256 of its method, path and body; its answer is kept when it would
-- be the same again (2xx, and 400, 413, 415, 422), and a retry with the
-- same client_key and request gets it back. Keys belong to one account (the
-- account's deletion takes them) and last IDEMPOTENCY_TTL from created_at:
-- a claim renews an expired row, and each kept answer deletes up to 20
-- expired ones, so no cron job is needed.
--   request   the SHA-256 of the request (idempotency_keys_request_check)
--   status    NULL while the first request runs, then its answer's status
--             (idempotency_keys_status_check)
--   client_key 1 to 255 printable ASCII characters (idempotency_keys_key_check)
-- Index: idempotency_keys_pkey for the claim; idempotency_keys_created_at_idx
-- for the expired rows each claim deletes.

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL,
    client_key text NOT NULL,
    request bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- An HTTP status: 200 to 499, never near integer's bound.
    -- squawk-ignore prefer-bigint-over-int
    status integer,
    content_type text,
    body bytea,
    etag text,
    location_url text,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, client_key),
    CONSTRAINT idempotency_keys_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT idempotency_keys_key_check CHECK (client_key ~ '^[ -~]{1,255}$'),
    CONSTRAINT idempotency_keys_request_check CHECK (octet_length(request) = 32),
    CONSTRAINT idempotency_keys_status_check CHECK (
        status IS NULL OR status BETWEEN 200 AND 499
    )
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
