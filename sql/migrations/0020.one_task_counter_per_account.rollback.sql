-- Rollback of 0020: back to task_counts' stripes, as 0005 made them, with
-- each account's users.task_total spread over them the way 0005 spread its
-- count; the triggers and users.task_total go. Tasks are untouched.

-- A rollback removes exactly what its migration created.
-- squawk-ignore-file ban-drop-column, ban-drop-function

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
    users.id,
    stripes.stripe,
    users.task_total / 64 + (stripes.stripe < users.task_total % 64)::integer
FROM users
CROSS JOIN generate_series(0, 63) AS stripes (stripe)
WHERE users.task_total / 64 + (stripes.stripe < users.task_total % 64)::integer > 0;

DROP TRIGGER tasks_count_owner_trg ON tasks;

DROP TRIGGER tasks_count_truncate_trg ON tasks;

DROP TRIGGER tasks_count_delete_trg ON tasks;

DROP TRIGGER tasks_count_insert_trg ON tasks;

DROP FUNCTION tasks_count();

ALTER TABLE users DROP COLUMN task_total;
