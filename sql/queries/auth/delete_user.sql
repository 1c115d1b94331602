-- name: delete_user :val
-- Params: $1 id uuid, $2 password_hash text
-- DELETE /api/auth/me, in one statement: account id is deleted, and with
-- it (ON DELETE CASCADE) every task, task count and session it had. Only
-- while its password hash is still password_hash, the one the presented
-- password was checked against (NULL: an account linked to Better Auth).
-- A linked account leaves its issuer and subject in
-- better_auth_departures, so the Better Auth tokens issued until now make
-- no new account; departures older than 30 days are deleted. Returns the
-- id; no row when the account is gone or its password changed meanwhile.
-- Index: users_pkey; tasks_user_id_created_at_idx, task_totals_pkey and
-- sessions_user_id_idx serve the cascades; better_auth_departures_pkey and
-- better_auth_departures_departed_at_idx.
WITH deleted AS (
    DELETE FROM users
    WHERE
        id = $1::uuid
        AND password_hash IS NOT DISTINCT FROM $2::text
    RETURNING id, auth_issuer, auth_subject
),

departed AS (
    INSERT INTO better_auth_departures (auth_issuer, auth_subject)
    SELECT
        deleted.auth_issuer,
        deleted.auth_subject
    FROM deleted
    WHERE deleted.auth_subject IS NOT NULL
    ON CONFLICT (auth_issuer, auth_subject)
    DO UPDATE SET departed_at = excluded.departed_at
),

forgotten AS (
    DELETE FROM better_auth_departures
    WHERE departed_at < now() - interval '30 days'
)

SELECT deleted.id FROM deleted;
