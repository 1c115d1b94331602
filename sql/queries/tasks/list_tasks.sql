-- name: list_tasks :many
-- Params: $1 user_id uuid, $2 completed boolean, $3 q text, $4 limit integer,
--     $5 after_value, $6 after_id uuid
-- A page of the caller's (user_id) tasks in one of the sorts below, ties by
-- id, optionally only done or open (completed) and containing q in title or
-- description, case-insensitively (lower() of both sides, a plain
-- substring: % _ and \ are just characters). At most limit rows; the
-- handler asks for one more than the page to know whether a next page
-- exists. A page after a cursor starts after its row (after_value, the sort
-- column's value, and after_id). The service runs this file as four
-- statements a sort: list_tasks[<sort>] for the first page (the line marked
-- "after the cursor" left out) and list_tasks[<sort>,after], with the two
-- marked lines as the sort's entry below says and the lines marked "with q"
-- left out; and list_tasks[<sort>,q] and list_tasks[<sort>,q,after], the
-- same with those lines in. Without them the CTE is inlined and the page is
-- read off the sort's index within the caller's rows, from the start or
-- from the cursor: the row comparison is where the index scan starts, in
-- custom and generic plans alike, so a deep page costs what the first does
-- (a "$5 IS NULL OR" in one statement would make it a filter in the generic
-- plan). That also serves a q without 3 letters or digits in a row (such as
-- 1 or 2 characters), which may have no trigram, and a GIN search for no
-- trigram reads every entry of the column: here it is a filter on the sort
-- index's read, which stops at the page's end and is bounded by the
-- caller's tasks (MAX_TASKS_PER_USER). Any other q runs the ",q"
-- statements: the CTE's OFFSET 0 is a fence the planner cannot pull the
-- page through, and the CTE names the caller as ARRAY[user_id] @>
-- ARRAY[$1], which only the Search index below answers (no btree on
-- user_id can), so it finds the caller's matches first, through that index
-- (q as a LIKE pattern, its \ % and _ escaped), in custom and generic
-- plans alike, then sorts them and takes the page (the outer user_id and
-- strpos filters then only confirm). A search that matches nothing reads
-- almost nothing; its cost grows with the matches (at most the caller's
-- tasks), not with the caller's other tasks, nor with anyone else's.
-- Search q: tasks_user_id_text_trgm_idx (GIN: owner, trigrams), q with 3
--     letters or digits in a row
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
WITH candidates AS (
    SELECT
        id,
        user_id,
        title,
        description,
        completed,
        completed_at,
        priority,
        due_at,
        remind_at,
        tags,
        repeat,
        version,
        created_at,
        updated_at
    FROM tasks
    WHERE -- with q
        ARRAY[user_id] @> ARRAY[$1::uuid] -- with q
        AND ( -- with q
            lower(title) LIKE '%' || replace( -- with q
                replace(replace(lower($3::text), '\', '\\'), '%', '\%'), '_', '\_' -- with q
            ) || '%' -- with q
            OR lower(description) LIKE '%' || replace( -- with q
                replace(replace(lower($3::text), '\', '\\'), '%', '\%'), '_', '\_' -- with q
            ) || '%' -- with q
        ) -- with q
    -- noqa: disable=AM09
    OFFSET 0 -- with q
    -- noqa: enable=AM09
)

SELECT
    id,
    user_id,
    title,
    description,
    completed,
    completed_at,
    priority,
    due_at,
    remind_at,
    tags,
    repeat,
    version,
    created_at,
    updated_at
FROM candidates
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
