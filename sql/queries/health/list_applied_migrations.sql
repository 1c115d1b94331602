-- name: list_applied_migrations :many
-- The ids of the applied yoyo migrations, for /ready's "schema is current"
-- check.
-- Index: none needed; _yoyo_migration holds one small row per migration.
SELECT migration_id
FROM _yoyo_migration;
