-- Rollback of 0020: back to task_counts' stripes, as 0005 made them, with
-- each account's task_total spread over them the way 0005 spread its
-- count; the triggers and task_totals go. Tasks are untouched.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-table, ban-drop-function

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

-- No task appears or goes while the counts move back (reads go on).
LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE task_counts (
    user_id uuid NOT NULL,
    -- 0 to 63: a smallint, exactly as 0005 made it.
    -- squawk-ignore prefer-bigint-over-smallint
    stripe smallint NOT NULL,
    -- Compared with the integer limit, exactly as 0005 made it.
    -- squawk-ignore prefer-bigint-over-int
    task_total integer NOT NULL DEFAULT 0,
    CONSTRAINT task_counts_pkey PRIMARY KEY (user_id, stripe),
    CONSTRAINT task_counts_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT task_counts_stripe_check CHECK (stripe BETWEEN 0 AND 63),
    CONSTRAINT task_counts_task_total_check CHECK (task_total >= 0)
);

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
