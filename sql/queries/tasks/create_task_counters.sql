-- name: create_task_counters :exec
-- Params: $1 user_id uuid
-- The caller's (user_id) 16 task_counts rows, at 0, made when a create
-- found none (its first); a no-op for those that exist. A user_id that no
-- longer exists raises task_counts_user_id_fkey (the service answers 401:
-- the account is gone).
-- Index: task_counts_pkey (the conflict); task_counts_user_id_fkey checks
-- users_pkey.
INSERT INTO task_counts (user_id, stripe)
SELECT
    $1::uuid,
    stripes.stripe
FROM generate_series(0, 15) AS stripes (stripe)
ON CONFLICT (user_id, stripe) DO NOTHING;
