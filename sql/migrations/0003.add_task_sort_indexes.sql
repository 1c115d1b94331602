-- Migration 0003: indexes for the other task list orders.
-- depends: 0002.create_tasks
--
-- GET /api/tasks sorts a user's tasks by created_at (0002's
-- tasks_user_id_created_at_idx), updated_at or title, ties broken by id, in
-- either direction; each order is read as a keyset page straight off one of
-- these indexes (backward for descending), so a deep page costs what the
-- first does. Titles sort in the ICU root collation ("und-x-icu"): apple,
-- Apple, ärger, Banana, zebra, the order people expect, not byte order.

CREATE INDEX tasks_user_id_updated_at_idx ON tasks (user_id, updated_at, id);

CREATE INDEX tasks_user_id_title_idx ON tasks (user_id, (title COLLATE "und-x-icu"), id);
