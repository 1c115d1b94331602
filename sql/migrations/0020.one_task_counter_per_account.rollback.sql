-- Rollback of 0020: task_counts' stripes (kept by 0020) rewritten from
-- each account's task_total, spread the way 0005 spread its count; the
-- triggers and task_totals go. Tasks are untouched.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-table, ban-drop-function

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

-- No task appears or goes while the counts move back (reads go on).
LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

-- 0020 kept the stripes; they went stale while it was applied.
DELETE FROM task_counts;

INSERT INTO task_counts (user_id, stripe, task_total)
SELECT
    totals.user_id,
    stripes.stripe,
    totals.task_total / 64 + (stripes.stripe < totals.task_total % 64)::integer
FROM task_totals AS totals
CROSS JOIN generate_series(0, 63) AS stripes (stripe)
WHERE totals.task_total / 64 + (stripes.stripe < totals.task_total % 64)::integer > 0;

DROP TRIGGER users_task_totals_trg ON users;

DROP TRIGGER tasks_count_owner_trg ON tasks;

DROP TRIGGER tasks_count_truncate_trg ON tasks;

DROP TRIGGER tasks_count_delete_trg ON tasks;

DROP TRIGGER tasks_count_insert_trg ON tasks;

DROP FUNCTION task_totals_open();

DROP FUNCTION task_totals_count();

DROP TABLE task_totals;
