-- Migration 0021: the task listing as a function planned with its values.
-- depends: 0020.one_task_counter_per_account
--
-- list_tasks() holds the listing that sql/queries/tasks/list_tasks.sql ran
-- until now, unchanged. Its SET plan_cache_mode plans every call with the
-- call's values (the NULL filters and the sorts not asked for fold away, so
-- what is left reads its index) in one round trip, with no transaction
-- around it, and PL/pgSQL keeps the parsed statement for the session, also
-- behind a transaction pooler, whose unnamed statements are parsed afresh.
-- Arguments, in order: user_id uuid, sort text, completed boolean, q text,
-- priorities text[], due_after timestamptz, due_before timestamptz, overdue
-- boolean, after_at timestamptz, after_text text, after_id uuid, limit
-- integer, indexed_q text, tags text[]; list_tasks.sql says what each means.
-- Index: tasks_user_id_created_at_idx, _updated_at_idx, _title_idx,
-- _due_at_idx or _priority_idx: the sort's, or a selective filter's;
-- tasks_user_id_text_trgm_idx for indexed_q, tasks_tag_keys_idx for tags.

SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE FUNCTION list_tasks(
    uuid, text, boolean, text, text[], timestamptz, timestamptz, boolean,
    timestamptz, text, uuid, integer, text, text[]
) RETURNS SETOF tasks
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    RETURN QUERY
    SELECT tasks.*
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
END;
$$;
