-- name: list_tasks_by_created_at_asc_after :many
-- A user's tasks ($1) by creation time, ascending, ties by id, optionally only
-- done or open ($2) and containing $3 in title or description,
-- case-insensitively (a plain substring: % and _ are just characters). At most
-- $4 rows; the handler asks for one more than the page to know whether a next
-- page exists. The page after the cursor row ($5 sort value, $6 id).
-- Index: tasks_user_id_created_at_idx, scanned forward from the cursor within
-- the user's rows.
SELECT
    id,
    user_id,
    title,
    description,
    completed,
    version,
    created_at,
    updated_at
FROM tasks
WHERE
    user_id = $1::uuid
    AND ($2::boolean IS NULL OR completed = $2::boolean)
    AND (
        $3::text IS NULL
        OR strpos(lower(title), lower($3::text)) > 0
        OR strpos(lower(description), lower($3::text)) > 0
    )
    AND (created_at, id) > ($5::timestamptz, $6::uuid)
ORDER BY created_at ASC, id ASC
LIMIT $4::integer;
