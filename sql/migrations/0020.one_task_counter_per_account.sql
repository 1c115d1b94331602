-- Migration 0020: one task counter per account, kept by triggers on tasks.
-- depends: 0019.add_better_auth_signouts
--
-- What: users.task_total, the number of tasks the account owns, replaces
-- task_counts (0005's up to 64 stripes an account). create_task.sql checks
-- it under the account row's lock, so one account's creates queue on that
-- row and none passes MAX_TASKS_PER_USER; the create does not count.
-- Triggers on tasks count every INSERT, DELETE and TRUNCATE, and a task
-- moved to another account (UPDATE OF user_id), whoever writes
-- them (the service, a DBA's import): one place counts, so nothing is
-- counted twice or missed. Statement triggers with transition tables, so an
-- import of n tasks updates each account's row once, not n times. On users,
-- every account has its counter from the start and loses it with its row.
--
-- Locks: task_counts, then tasks (SHARE ROW EXCLUSIVE: reads go on, writes
-- wait) are held to COMMIT, so no task appears or goes between the count
-- (one pass over tasks) and the triggers taking over: the count is exact.
-- users gets its column (a constant default: no rewrite) under ACCESS
-- EXCLUSIVE only after the count, for the update of accounts with tasks. A
-- write of the previous release caught between two of these locks can
-- deadlock with this file: PostgreSQL cancels one of the two (if it is
-- this file, run migrate again).
--
-- Deploy: the previous release's creates and deletes name task_counts, so
-- they fail from this COMMIT until the new release serves.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

-- In the order the previous release's create takes them.
LOCK TABLE task_counts IN ACCESS EXCLUSIVE MODE;

LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION tasks_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE users SET task_total = 0 WHERE task_total <> 0;
    ELSIF TG_LEVEL = 'ROW' THEN
        -- UPDATE OF user_id: the task goes from one account to another.
        UPDATE users
        SET task_total = task_total + CASE WHEN id = NEW.user_id THEN 1 ELSE -1 END
        WHERE id IN (OLD.user_id, NEW.user_id);
    ELSIF TG_OP = 'INSERT' THEN
        UPDATE users SET task_total = users.task_total + added.total
        FROM (
            SELECT user_id, count(*)::integer AS total FROM new_tasks GROUP BY user_id
        ) AS added
        WHERE users.id = added.user_id;
    ELSE
        UPDATE users SET task_total = users.task_total - gone.total
        FROM (
            SELECT user_id, count(*)::integer AS total FROM old_tasks GROUP BY user_id
        ) AS gone
        WHERE users.id = gone.user_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_count_insert_trg
AFTER INSERT ON tasks
REFERENCING NEW TABLE AS new_tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasks_count();

CREATE TRIGGER tasks_count_delete_trg
AFTER DELETE ON tasks
REFERENCING OLD TABLE AS old_tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasks_count();

CREATE TRIGGER tasks_count_truncate_trg
AFTER TRUNCATE ON tasks
FOR EACH STATEMENT EXECUTE FUNCTION tasks_count();

CREATE TRIGGER tasks_count_owner_trg
AFTER UPDATE OF user_id ON tasks
FOR EACH ROW WHEN (old.user_id IS DISTINCT FROM new.user_id)
EXECUTE FUNCTION tasks_count();

CREATE TEMPORARY TABLE counted ON COMMIT DROP AS
SELECT
    user_id,
    count(*)::integer AS total
FROM tasks
GROUP BY user_id;

-- The limit is at most 10^9 (MAX_TASKS_PER_USER), compared as integer.
-- squawk-ignore prefer-bigint-over-int
ALTER TABLE users ADD COLUMN task_total integer NOT NULL DEFAULT 0
CONSTRAINT users_task_total_check CHECK (task_total >= 0);

UPDATE users SET task_total = counted.total
FROM counted
WHERE users.id = counted.user_id;

-- The stripes are replaced: see What above.
-- squawk-ignore ban-drop-table
DROP TABLE task_counts;
