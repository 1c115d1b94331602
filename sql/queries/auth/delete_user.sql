-- name: delete_user :val
-- Params: $1 id uuid, $2 password_hash text
-- Deletes account id and its tasks while its hash is password_hash; a linked one departs.
-- Index: users_pkey; the cascades' user_id indexes; better_auth_departures_pkey.
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
