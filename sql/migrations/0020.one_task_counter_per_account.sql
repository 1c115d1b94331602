-- Migration 0020: one task counter per account, kept by triggers on tasks.
-- depends: 0019.add_better_auth_signouts
--
-- What: task_totals, one row an account (made with the account by
-- users_task_totals_trg, gone with it by ON DELETE CASCADE): the number of
-- tasks it owns. It replaces task_counts (0005's up to 64 stripes an
-- account; see Deploy). create_task.sql checks it under that row's lock, so one
-- account's creates queue on the row and none passes MAX_TASKS_PER_USER;
-- the create does not count. Triggers on tasks count every INSERT, DELETE
-- and TRUNCATE, and a task moved to another account (UPDATE OF user_id),
-- whoever writes them (the service, a DBA's import): one place counts, so
-- nothing is counted twice or missed. Statement triggers with transition
-- tables: an import of n tasks updates each account's row once. Not a
-- users column: an UPDATE of users checks all of its CHECKs.
--
-- Locks: tasks and users (SHARE ROW EXCLUSIVE: reads go on, writes wait),
-- held to COMMIT, so no task or account appears or goes between the count
-- (one pass over tasks) and the triggers taking over: the count is exact,
-- and a write that waited is counted by the triggers.
--
-- Deploy: task_counts stays, so the previous release's creates and deletes
-- keep working until the new release serves (its stripes go stale; nothing
-- of this release reads them). A later release drops it.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE task_totals (
    user_id uuid NOT NULL,
    -- The limit is at most 10^9 (MAX_TASKS_PER_USER), compared as integer.
    -- squawk-ignore prefer-bigint-over-int
    task_total integer NOT NULL DEFAULT 0,
    CONSTRAINT task_totals_pkey PRIMARY KEY (user_id),
    CONSTRAINT task_totals_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT task_totals_task_total_check CHECK (task_total >= 0)
);

CREATE FUNCTION task_totals_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE task_totals SET task_total = 0 WHERE task_total <> 0;
    ELSIF TG_LEVEL = 'ROW' THEN
        -- UPDATE OF user_id: the task goes from one account to another.
        UPDATE task_totals
        SET task_total = task_total + CASE WHEN user_id = NEW.user_id THEN 1 ELSE -1 END
        WHERE user_id IN (OLD.user_id, NEW.user_id);
    ELSIF TG_OP = 'INSERT' THEN
        UPDATE task_totals SET task_total = task_totals.task_total + added.total
        FROM (
            SELECT user_id, count(*)::integer AS total FROM new_tasks GROUP BY user_id
        ) AS added
        WHERE task_totals.user_id = added.user_id;
    ELSE
        UPDATE task_totals SET task_total = task_totals.task_total - gone.total
        FROM (
            SELECT user_id, count(*)::integer AS total FROM old_tasks GROUP BY user_id
        ) AS gone
        WHERE task_totals.user_id = gone.user_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION task_totals_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_totals (user_id) SELECT id FROM new_users;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_count_insert_trg
AFTER INSERT ON tasks
REFERENCING NEW TABLE AS new_tasks
FOR EACH STATEMENT EXECUTE FUNCTION task_totals_count();

CREATE TRIGGER tasks_count_delete_trg
AFTER DELETE ON tasks
REFERENCING OLD TABLE AS old_tasks
FOR EACH STATEMENT EXECUTE FUNCTION task_totals_count();

CREATE TRIGGER tasks_count_truncate_trg
AFTER TRUNCATE ON tasks
FOR EACH STATEMENT EXECUTE FUNCTION task_totals_count();

CREATE TRIGGER tasks_count_owner_trg
AFTER UPDATE OF user_id ON tasks
FOR EACH ROW WHEN (old.user_id IS DISTINCT FROM new.user_id)
EXECUTE FUNCTION task_totals_count();

CREATE TRIGGER users_task_totals_trg
AFTER INSERT ON users
REFERENCING NEW TABLE AS new_users
FOR EACH STATEMENT EXECUTE FUNCTION task_totals_open();

-- Every account, with the tasks it owns now.
WITH counted AS (
    SELECT
        user_id,
        count(*)::integer AS total
    FROM tasks
    GROUP BY user_id
)

INSERT INTO task_totals (user_id, task_total)
SELECT
    users.id,
    coalesce(counted.total, 0) AS task_total
FROM users
LEFT JOIN counted ON users.id = counted.user_id;
