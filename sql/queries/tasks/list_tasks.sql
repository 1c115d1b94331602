-- name: list_tasks :many
-- Params: $1 user_id uuid, $2 sort text, $3 completed boolean, $4 q text,
--     $5 priorities text[], $6 due_after timestamptz, $7 due_before timestamptz,
--     $8 overdue boolean, $9 after_at timestamptz, $10 after_text text,
--     $11 after_id uuid, $12 limit integer, $13 indexed_q text, $14 tags text[]
-- A page of user_id's tasks in one sort (ties by id) after the cursor's row
-- (after_id NULL: the first page), each filter NULL or applied; an indexed_q
-- (q with 3 letters or digits in a row) and tags match through GIN first.
-- Index: tasks_user_id_created_at_idx, _updated_at_idx, _title_idx,
-- _due_at_idx or _priority_idx: the sort's, or a selective filter's;
-- tasks_user_id_text_trgm_idx for indexed_q, tasks_tag_keys_idx for tags.
SELECT tasks
FROM tasks
WHERE
    CASE
        WHEN $13::text IS NULL AND $14::text[] IS NULL
            THEN user_id = $1::uuid
        ELSE (user_id = $1::uuid) IS TRUE AND ctid = any(array(
            SELECT matching.ctid
            FROM tasks AS matching
            WHERE
                (
                    $13::text IS NULL
                    OR ARRAY[matching.user_id] @> ARRAY[$1::uuid]
                    AND (
                        lower(matching.title) LIKE '%' || replace(
                            replace(replace(lower($13::text), '\', '\\'), '%', '\%'), '_', '\_'
                        ) || '%'
                        OR lower(matching.description) LIKE '%' || replace(
                            replace(replace(lower($13::text), '\', '\\'), '%', '\%'), '_', '\_'
                        ) || '%'
                    )
                )
                AND (
                    $14::text[] IS NULL
                    OR tasks_tag_keys(matching.user_id, matching.tags)
                    @> tasks_tag_keys($1::uuid, $14::text[])
                    AND matching.tags <> '{}'
                )
        ))
    END
    AND ($3::boolean IS NULL OR completed = $3::boolean)
    AND (
        $4::text IS NULL
        OR strpos(lower(title), lower($4::text)) > 0
        OR strpos(lower(description), lower($4::text)) > 0
    )
    AND (
        $5::text[] IS NULL
        OR tasks_priority_rank(priority) IN (
            tasks_priority_rank(($5::text[])[1]), tasks_priority_rank(($5::text[])[2]),
            tasks_priority_rank(($5::text[])[3]), tasks_priority_rank(($5::text[])[4])
        )
    )
    AND (
        $6::timestamptz IS NULL AND $7::timestamptz IS NULL
        OR coalesce(due_at, 'infinity') >= coalesce($6::timestamptz, '-infinity')
        AND coalesce(due_at, 'infinity') < coalesce($7::timestamptz, 'infinity')
    )
    AND ($8::boolean IS NOT TRUE OR NOT completed AND coalesce(due_at, 'infinity') < now())
    AND ($8::boolean IS NOT FALSE OR completed OR coalesce(due_at, 'infinity') >= now())
    AND (
        $11::uuid IS NULL
        OR CASE $2::text
            WHEN 'created_at' THEN (created_at, id) > ($9::timestamptz, $11::uuid)
            WHEN '-created_at' THEN (created_at, id) < ($9::timestamptz, $11::uuid)
            WHEN 'updated_at' THEN (updated_at, id) > ($9::timestamptz, $11::uuid)
            WHEN '-updated_at' THEN (updated_at, id) < ($9::timestamptz, $11::uuid)
            WHEN 'title'
                THEN
                    (title COLLATE "und-x-icu", id)
                    > ($10::text COLLATE "und-x-icu", $11::uuid)
            WHEN '-title'
                THEN
                    (title COLLATE "und-x-icu", id)
                    < ($10::text COLLATE "und-x-icu", $11::uuid)
            WHEN 'due_at'
                THEN
                    (coalesce(due_at, 'infinity'), id)
                    > (coalesce($9::timestamptz, 'infinity'), $11::uuid)
            WHEN '-due_at'
                THEN
                    (coalesce(due_at, 'infinity'), id)
                    < (coalesce($9::timestamptz, 'infinity'), $11::uuid)
            WHEN 'priority'
                THEN
                    (tasks_priority_rank(priority), id)
                    > (tasks_priority_rank($10::text), $11::uuid)
            WHEN '-priority'
                THEN
                    (tasks_priority_rank(priority), id)
                    < (tasks_priority_rank($10::text), $11::uuid)
        END
    )
ORDER BY
    CASE $2::text WHEN 'created_at' THEN created_at END ASC,
    CASE $2::text WHEN '-created_at' THEN created_at END DESC,
    CASE $2::text WHEN 'updated_at' THEN updated_at END ASC,
    CASE $2::text WHEN '-updated_at' THEN updated_at END DESC,
    CASE $2::text WHEN 'title' THEN title COLLATE "und-x-icu" END ASC,
    CASE $2::text WHEN '-title' THEN title COLLATE "und-x-icu" END DESC,
    CASE $2::text WHEN 'due_at' THEN coalesce(due_at, 'infinity') END ASC,
    CASE $2::text WHEN '-due_at' THEN coalesce(due_at, 'infinity') END DESC,
    CASE $2::text WHEN 'priority' THEN tasks_priority_rank(priority) END ASC,
    CASE $2::text WHEN '-priority' THEN tasks_priority_rank(priority) END DESC,
    CASE WHEN $2::text LIKE '-%' THEN id END DESC,
    CASE WHEN $2::text NOT LIKE '-%' THEN id END ASC
LIMIT $12::integer;
