-- name: account_exists :val
-- Params: $1 id uuid
-- TRUE while account id exists, no row once it is deleted: a Better Auth
-- token's account, which each worker checks at most every half second a
-- token, as those tokens have no session here (service/auth/tokens.py).
-- Index: users_pkey.
SELECT TRUE AS live
FROM users
WHERE id = $1::uuid;
