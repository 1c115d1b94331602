-- Rollback of 0003: drops the updated_at and title list indexes. Listing by
-- those orders still works without them, by sorting the user's rows.

DROP INDEX tasks_user_id_title_idx;

DROP INDEX tasks_user_id_updated_at_idx;
