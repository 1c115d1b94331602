-- name: lock_task_counts :val
-- Params: $1 user_id uuid
-- In create_task_near_limit's transaction, first: the caller's (user_id)
-- account row, locked FOR NO KEY UPDATE until COMMIT, so that one account's
-- careful creates run one at a time and each sees the stripes the one
-- before it made. Creates on the fast path are not held up (their foreign
-- key check takes KEY SHARE). No row: the account is gone (401).
-- Index: users_pkey.
SELECT id
FROM users
WHERE id = $1::uuid
FOR NO KEY UPDATE;
