-- name: list_tasks_by_updated_at_desc :many
-- A user's tasks ($1) by last change, descending, ties by id, optionally only
-- done or open ($2) and containing $3 in title or description,
-- case-insensitively (a plain substring: % and _ are just characters). At most
-- $4 rows; the handler asks for one more than the page to know whether a next
-- page exists. The first page; later pages use
-- list_tasks_by_updated_at_desc_after.
-- Index: tasks_user_id_updated_at_idx, scanned backward from the start within
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
ORDER BY updated_at DESC, id DESC
LIMIT $4::integer;
