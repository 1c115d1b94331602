-- name: list_applied_migrations :many
-- The applied yoyo migrations' ids, for /ready's "schema is current" check.
-- Index: none (one small row per migration).
SELECT migration_id
FROM _yoyo_migration;
