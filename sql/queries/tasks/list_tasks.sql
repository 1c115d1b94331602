-- name: list_tasks :many
-- Params: $1 user_id uuid, $2 completed boolean, $3 q text, $4 limit integer,
--     $5 after_value, $6 after_id uuid
-- A page of the caller's (user_id) tasks in one of the sorts below, ties by
-- id, optionally only done or open (completed) and containing q in title or
-- description, case-insensitively (a plain substring: % and _ are just
-- characters). At most limit rows; the handler asks for one more than the
-- page to know whether a next page exists. A page after a cursor starts
-- after its row (after_value, the sort column's value, and after_id).
-- One statement for every sort and page: the service runs this file as two
-- statements a sort, list_tasks[<sort>] for the first page (the line marked
-- "after the cursor" left out) and list_tasks[<sort>,after], with the two
-- marked lines as the sort's entry below says. Each reads the sort's index
-- within the caller's rows, from the start or from the cursor: the row
-- comparison is where the index scan starts, in custom and generic plans
-- alike, so a deep page costs what the first does (a "$5 IS NULL OR" in one
-- statement would make it a filter in the generic plan).
-- Sort created_at: tasks_user_id_created_at_idx, forward
--     ORDER BY created_at ASC, id ASC
--     AND (created_at, id) > ($5::timestamptz, $6::uuid)
-- Sort -created_at: tasks_user_id_created_at_idx, backward
--     ORDER BY created_at DESC, id DESC
--     AND (created_at, id) < ($5::timestamptz, $6::uuid)
-- Sort updated_at: tasks_user_id_updated_at_idx, forward
--     ORDER BY updated_at ASC, id ASC
--     AND (updated_at, id) > ($5::timestamptz, $6::uuid)
-- Sort -updated_at: tasks_user_id_updated_at_idx, backward
--     ORDER BY updated_at DESC, id DESC
--     AND (updated_at, id) < ($5::timestamptz, $6::uuid)
-- Sort title: tasks_user_id_title_idx (ICU root collation), forward
--     ORDER BY title COLLATE "und-x-icu" ASC, id ASC
--     AND (title COLLATE "und-x-icu", id) > ($5::text COLLATE "und-x-icu", $6::uuid)
-- Sort -title: tasks_user_id_title_idx (ICU root collation), backward
--     ORDER BY title COLLATE "und-x-icu" DESC, id DESC
--     AND (title COLLATE "und-x-icu", id) < ($5::text COLLATE "und-x-icu", $6::uuid)
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
    AND (created_at, id) < ($5::timestamptz, $6::uuid) -- per sort: after the cursor
ORDER BY created_at DESC, id DESC -- per sort: ORDER BY
LIMIT $4::integer;
