-- Migration 0005: each account's task count, for MAX_TASKS_PER_USER.
-- depends: 0004.link_better_auth_accounts
--
-- What: users.task_count, the number of tasks the account owns, never
-- negative (users_task_count_check), backfilled here from tasks. From now
-- on create_task.sql adds 1 and delete_task.sql takes 1 away in the same
-- statement as their INSERT / DELETE, so it stays equal to count(*).
--
-- Why a counter: a user may own at most MAX_TASKS_PER_USER tasks, and two
-- creates at the limit must not both pass. create_task's UPDATE ... WHERE
-- task_count < limit row-locks the account, and under READ COMMITTED a
-- second create waiting on that lock re-checks the WHERE on the committed
-- row, so exactly one of them gets the last slot, with no retry loop, no
-- SERIALIZABLE and no count(*) of up to 10,000 rows a create. The price is
-- that one account's creates commit one at a time (the lock is held until
-- each COMMIT): bench/load.py's "create" (one account, 32 connections)
-- measures it; creates of different accounts never wait for each other.
--
-- Locks, on a populated database: tasks is locked SHARE for the file's
-- transaction (reads go on; creates and deletes wait) so no task is added or
-- removed while it is counted, and users ACCESS EXCLUSIVE (from the ADD
-- COLUMN; sign-in, /me and task creation wait). ADD COLUMN with a constant
-- default and the CHECK are catalogue changes plus one short scan of users;
-- the backfill reads tasks_user_id_created_at_idx once and writes one new
-- version of each account with tasks: about a second per million tasks and
-- per hundred thousand accounts. All of it runs under this file's
-- lock_timeout and statement_timeout and applies completely or not at all.
--
-- Deploy: run it with the release that maintains the counter. Tasks that
-- the previous release creates between this migration and its own
-- replacement are not counted; if there was such a window, run the backfill
-- statement below once more afterwards (it is idempotent).

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

-- Taken first, in the order the running release's create takes them
-- (tasks, then users for the foreign key), so the two cannot deadlock.
LOCK TABLE tasks IN SHARE MODE;

-- A constant default: no table rewrite (PostgreSQL 11+). integer: the
-- limit is at most 10^9 (MAX_TASKS_PER_USER), and create_task compares it
-- as $5::integer.
-- squawk-ignore prefer-bigint-over-int
ALTER TABLE users ADD COLUMN task_count integer NOT NULL DEFAULT 0;

-- Validated here rather than NOT VALID plus a later VALIDATE: every row
-- holds the default 0, and users is locked already (see Locks above).
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_task_count_check CHECK (task_count >= 0);

UPDATE users
SET task_count = counted.task_total
FROM (
    SELECT
        user_id,
        count(*)::integer AS task_total
    FROM tasks
    GROUP BY user_id
) AS counted
WHERE users.id = counted.user_id;
