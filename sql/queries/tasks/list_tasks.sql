-- name: list_tasks :many
-- Params: $1 user_id uuid, $2 sort text, $3 completed boolean, $4 q text,
--     $5 priorities text[], $6 due_after timestamptz, $7 due_before timestamptz,
--     $8 overdue boolean, $9 after_at timestamptz, $10 after_text text,
--     $11 after_id uuid, $12 limit integer, $13 indexed_q text, $14 tags text[]
-- A page of user_id's tasks in one sort (ties by id) after the cursor's row
-- (after_id NULL: the first page), each filter NULL or applied: list_tasks()
-- (migration 0021), planned with its values. Each row is one task as the
-- API's JSON text (the keys of TaskSchema in its order, timestamps by
-- api_timestamp(), migration 0022), in the page's order.
-- Index: tasks_user_id_created_at_idx, _updated_at_idx, _title_idx,
-- _due_at_idx or _priority_idx: the sort's, or a selective filter's;
-- tasks_user_id_text_trgm_idx for indexed_q, tasks_tag_keys_idx for tags.
SELECT row_to_json(shown)::text AS rendered
FROM
    list_tasks(
        $1::uuid, $2::text, $3::boolean, $4::text, $5::text[], $6::timestamptz,
        $7::timestamptz, $8::boolean, $9::timestamptz, $10::text, $11::uuid,
        $12::integer, $13::text, $14::text[]
    ) WITH ORDINALITY AS listed,
    LATERAL (
        -- The API's keys in TaskSchema's order, which is not ST06's.
        SELECT  -- noqa: ST06
            listed.id,
            listed.user_id,
            listed.title,
            listed.description,
            listed.completed,
            api_timestamp(listed.completed_at) AS completed_at,
            listed.priority,
            api_timestamp(listed.due_at) AS due_at,
            api_timestamp(listed.remind_at) AS remind_at,
            listed.tags,
            listed.repeat,
            api_timestamp(listed.created_at) AS created_at,
            api_timestamp(listed.updated_at) AS updated_at
    ) AS shown
ORDER BY listed.ordinality;
