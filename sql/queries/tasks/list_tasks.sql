-- name: list_tasks :many
-- Params: $1 user_id uuid, $2 completed boolean, $3 q text, $4 limit integer,
--     $5 priorities text[], $6 tags text[], $7 due_after timestamptz,
--     $8 due_before timestamptz, $9 overdue boolean, $10 after_value,
--     $11 after_id uuid
-- A page of the caller's (user_id) tasks in one of the sorts below, ties by
-- id. Each filter is optional (NULL: not given) and they combine: only done
-- or open tasks (completed); containing q in title or description,
-- case-insensitively (lower() of both sides, a plain substring: % _ and \
-- are just characters); with one of the priorities; carrying every one of
-- the tags, case-insensitively (tasks_tag_keys(), 0012); due_after <=
-- due_at < due_before; overdue (open and due before now()) or, false, not
-- overdue. At most limit rows; the handler asks for one more than the page
-- to know whether a next page exists. A page after a cursor starts after
-- its row (after_value, the row's value of the sort's column, and
-- after_id). The service runs this file as statements per sort: for the
-- first page (the line marked "after the cursor" left out) and the page
-- after a cursor, each with the sort's two lines as its entry below says,
-- and each without the lines marked "with q" or "with tags", with those of
-- q, with those of tags, and with both: list_tasks[<sort>],
-- list_tasks[<sort>,after], list_tasks[<sort>,q], list_tasks[<sort>,tags,
-- after] and so on, each numbering the parameters it keeps $1, $2, ... in
-- this order. Without them the CTE is inlined and the page is read
-- off the sort's index within the caller's rows, from the start or from
-- the cursor: the row comparison is where the index scan starts, in custom
-- and generic plans alike, so a deep page costs what the first does (a "$10
-- IS NULL OR" in one statement would make it a filter in the generic plan).
-- The other filters are checked on the rows as they are read, in order,
-- until the page is full: bounded by the caller's tasks
-- (MAX_TASKS_PER_USER). That also serves a q without 3 letters or digits in
-- a row (such as 1 or 2 characters), which may have no trigram, and a GIN
-- search for no trigram reads every entry of the column. Any other q, and
-- any tag, runs the statements with their lines: the CTE's OFFSET 0 is a
-- fence the planner cannot pull the page through, and the CTE names the
-- caller only in forms that their GIN indexes answer (no btree on user_id
-- can): ARRAY[user_id] @> ARRAY[$1] with q as a LIKE pattern (its \ % and
-- _ escaped), and the keys of the caller's wanted tags. It finds the
-- caller's matches first, through one index or both, in custom and generic
-- plans alike, then sorts them and takes the page (the outer user_id, q
-- and tag conditions then only confirm). A search that matches nothing
-- reads almost nothing; its cost grows with the matches (at most the
-- caller's tasks), not with the caller's other tasks, nor with anyone
-- else's. Tasks without a due_at come last in both due_at orders: their
-- index holds NULL as 'infinity'. For -due_at the service starts the first
-- page "after" ('infinity', the nil uuid), so the backward read begins just
-- below them and yields the tasks with a due_at, latest first; when those
-- run out within a page, it goes on with the due_at statements after
-- ('infinity', nil), which yield the tasks without one (by id, ascending),
-- and a cursor with no value continues there. One index serves both
-- orders, so a write pays for one. priority runs none, low, medium, high
-- (tasks_priority_rank(), 0012).
-- Search q: tasks_user_id_text_trgm_idx (GIN: owner, trigrams), q with 3
--     letters or digits in a row
-- Search tags: tasks_tag_keys_idx (GIN: owner and tag, tasks with tags),
--     any tag
-- Sort created_at: tasks_user_id_created_at_idx, forward
--     ORDER BY created_at ASC, id ASC
--     AND (created_at, id) > ($10::timestamptz, $11::uuid)
-- Sort -created_at: tasks_user_id_created_at_idx, backward
--     ORDER BY created_at DESC, id DESC
--     AND (created_at, id) < ($10::timestamptz, $11::uuid)
-- Sort updated_at: tasks_user_id_updated_at_idx, forward
--     ORDER BY updated_at ASC, id ASC
--     AND (updated_at, id) > ($10::timestamptz, $11::uuid)
-- Sort -updated_at: tasks_user_id_updated_at_idx, backward
--     ORDER BY updated_at DESC, id DESC
--     AND (updated_at, id) < ($10::timestamptz, $11::uuid)
-- Sort title: tasks_user_id_title_idx (ICU root collation), forward
--     ORDER BY title COLLATE "und-x-icu" ASC, id ASC
--     AND (title COLLATE "und-x-icu", id) > ($10::text COLLATE "und-x-icu", $11::uuid)
-- Sort -title: tasks_user_id_title_idx (ICU root collation), backward
--     ORDER BY title COLLATE "und-x-icu" DESC, id DESC
--     AND (title COLLATE "und-x-icu", id) < ($10::text COLLATE "und-x-icu", $11::uuid)
-- Sort due_at: tasks_user_id_due_at_idx, forward
--     ORDER BY coalesce(due_at, 'infinity') ASC, id ASC
--     AND (coalesce(due_at, 'infinity'), id)
--         > (coalesce($10::timestamptz, 'infinity'), $11::uuid)
-- Sort -due_at: tasks_user_id_due_at_idx, backward, the tasks with a due_at
--     ORDER BY coalesce(due_at, 'infinity') DESC, id DESC
--     AND (coalesce(due_at, 'infinity'), id)
--         < (coalesce($10::timestamptz, 'infinity'), $11::uuid)
-- Sort priority: tasks_user_id_priority_idx, forward
--     ORDER BY tasks_priority_rank(priority) ASC, id ASC
--     AND (tasks_priority_rank(priority), id) > (tasks_priority_rank($10::text), $11::uuid)
-- Sort -priority: tasks_user_id_priority_idx, backward
--     ORDER BY tasks_priority_rank(priority) DESC, id DESC
--     AND (tasks_priority_rank(priority), id) < (tasks_priority_rank($10::text), $11::uuid)
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
    WHERE -- with q or tags
        TRUE -- with q or tags
        AND ARRAY[user_id] @> ARRAY[$1::uuid] -- with q
        AND ( -- with q
            lower(title) LIKE '%' || replace( -- with q
                replace(replace(lower($3::text), '\', '\\'), '%', '\%'), '_', '\_' -- with q
            ) || '%' -- with q
            OR lower(description) LIKE '%' || replace( -- with q
                replace(replace(lower($3::text), '\', '\\'), '%', '\%'), '_', '\_' -- with q
            ) || '%' -- with q
        ) -- with q
        AND tasks_tag_keys(user_id, tags) @> tasks_tag_keys($1::uuid, $6::text[]) -- with tags
        AND tags <> '{}' -- with tags
    -- noqa: disable=AM09
    OFFSET 0 -- with q or tags
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
    AND tasks_tag_keys(user_id, tags) @> tasks_tag_keys($1::uuid, $6::text[]) -- with tags
    -- The other filters, one CASE: with none given (the usual listing) it
    -- folds to TRUE in a custom plan, leaving the statement as it was
    -- before them, and in a generic plan the planner estimates it as one
    -- condition. As separate "$n IS NULL OR" conditions their estimates
    -- multiply (and a column without statistics yet, as in a new database,
    -- makes them tiny), and a plan that expects almost no rows may read all
    -- the caller's rows off another index and sort them.
    AND CASE
        WHEN
            $5::text[] IS NULL
            AND $7::timestamptz IS NULL
            AND $8::timestamptz IS NULL
            AND $9::boolean IS NULL
            THEN TRUE
        WHEN NOT priority = any(coalesce($5::text[], '{none,low,medium,high}')) THEN FALSE
        WHEN
            $9::boolean IS NOT NULL
            AND coalesce(NOT completed AND due_at < now(), FALSE) <> $9::boolean
            THEN FALSE
        WHEN $7::timestamptz IS NULL AND $8::timestamptz IS NULL THEN TRUE
        ELSE
            due_at >= coalesce($7::timestamptz, '-infinity')
            AND due_at < coalesce($8::timestamptz, 'infinity')
    END
    AND (created_at, id) < ($10::timestamptz, $11::uuid) -- per sort: after the cursor
ORDER BY created_at DESC, id DESC -- per sort: ORDER BY
LIMIT $4::integer;
