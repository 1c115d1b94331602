-- Migration 0005: each account's task count, for MAX_TASKS_PER_USER.
-- depends: 0004.link_better_auth_accounts
--
-- What: task_counts, an account's number of tasks split over 16 counter
-- rows (stripe 0 to 15; sum(task_total) is the account's count(*)), each never
-- negative (task_counts_task_total_check), gone with the account (ON DELETE
-- CASCADE). Backfilled here for every account that has tasks; an account
-- gets its rows at its first create (create_task_counters.sql).
-- create_task.sql adds 1 to one stripe and delete_task.sql takes 1 from
-- one, each in the same statement as its INSERT / DELETE.
--
-- Why: a user may own at most MAX_TASKS_PER_USER tasks, and two creates at
-- the limit must not both pass. Stripe s may count at most
-- (limit - s + 15) / 16 tasks (the 16 quotas sum to the limit). A create
-- adds to a stripe only while it is under its quota, checked by an UPDATE's
-- WHERE, which READ COMMITTED re-checks on the committed row after waiting
-- for its lock: no stripe passes its quota, so no account passes the limit,
-- with no retry loop, no SERIALIZABLE and no count(*) of up to 10,000 rows.
-- When its stripe is full, a create locks all 16 in order and takes any
-- that has room, so it is refused only when the account is at the limit.
-- Why 16 rows, not one users.task_count: a counter row stays locked until
-- its transaction's COMMIT (a WAL flush), so one account's creates on one
-- row commit one at a time: bench/load.py's "create" (one account, 32
-- connections) fell to 35% of its rate that way. A create picks one of 16
-- stripes at random and waits only for a create that picked the same one.
--
-- Locks, on a populated database: tasks is locked SHARE for this file's
-- transaction (reads go on; creates and deletes wait) so no task is added
-- or removed while it is counted. The backfill reads
-- tasks_user_id_created_at_idx once and writes 16 rows per account with
-- tasks, into the new table no one else uses yet: about a second per
-- million tasks. users is not locked beyond the foreign key's SHARE ROW
-- EXCLUSIVE (sign-ups wait; sign-in and every read go on). All of it runs
-- under this file's lock_timeout and statement_timeout, and applies
-- completely or not at all.
--
-- Deploy: run it with the release that maintains the counts. A task the
-- previous release creates between this migration and its replacement is
-- not counted (the account may then own one more than the limit); deleting
-- an uncounted task takes nothing from a stripe at 0.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '5min';

-- Taken first, in the order the running release's create takes them
-- (tasks, then users for the foreign key), so the two cannot deadlock.
LOCK TABLE tasks IN SHARE MODE;

CREATE TABLE task_counts (
    user_id uuid NOT NULL,
    -- 0 to 15; create_task.sql, create_task_counters.sql and
    -- create_task_near_limit.sql say 16 stripes too.
    -- squawk-ignore prefer-bigint-over-smallint
    stripe smallint NOT NULL,
    -- The limit is at most 10^9 (MAX_TASKS_PER_USER), compared as integer.
    -- squawk-ignore prefer-bigint-over-int
    task_total integer NOT NULL DEFAULT 0,
    CONSTRAINT task_counts_pkey PRIMARY KEY (user_id, stripe),
    CONSTRAINT task_counts_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT task_counts_stripe_check CHECK (stripe BETWEEN 0 AND 15),
    CONSTRAINT task_counts_task_total_check CHECK (task_total >= 0)
);

-- An account's n tasks spread as its creates would: n / 16 a stripe, the
-- first n % 16 stripes one more, so no stripe is over its quota unless the
-- account is over the limit.
INSERT INTO task_counts (user_id, stripe, task_total)
SELECT
    counted.user_id,
    stripes.stripe,
    counted.total / 16 + (stripes.stripe < counted.total % 16)::integer
FROM (
    SELECT
        user_id,
        count(*)::integer AS total
    FROM tasks
    GROUP BY user_id
) AS counted
CROSS JOIN generate_series(0, 15) AS stripes (stripe);
