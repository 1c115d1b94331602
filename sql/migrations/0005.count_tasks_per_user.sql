-- Migration 0005: each account's task count, for MAX_TASKS_PER_USER.
-- depends: 0004.link_better_auth_accounts
--
-- What: task_counts, an account's number of tasks split over up to 64
-- counter rows, "stripes" 0 to 63 (sum(task_total) is the account's
-- count(*); a stripe not made yet counts 0), each never negative
-- (task_counts_task_total_check), gone with the account (ON DELETE
-- CASCADE). create_task*.sql add 1 to a stripe and delete_task.sql takes 1
-- from one, each in the same statement as its INSERT / DELETE.
--
-- Why: a user may own at most MAX_TASKS_PER_USER tasks, and two creates at
-- the limit must not both pass. Stripe s may count at most
-- (limit - s + 63) / 64 tasks (the 64 shares sum to the limit). A create
-- locks a stripe, and the lock re-checks its share on the committed row
-- (READ COMMITTED): no stripe passes its share, so no account passes the
-- limit, with no retry loop, no SERIALIZABLE and no count(*) of up to
-- 10,000 rows a create. A create updates the stripe of its server
-- connection (pg_backend_pid() % 64), one write, so one account's creates
-- on different connections do not wait for each other. When that stripe is
-- full, it takes the first stripe under its share that no other create
-- holds (SKIP LOCKED). When there is none, or its own stripe is missing, it
-- takes the account row's lock (one such create at a time), locks every
-- stripe and takes the first with room, making a new one (its own first)
-- if needed: it is refused only at the limit, and an account has a stripe
-- for each server connection its creates ran on, at most 64.
-- Why not one users.task_count: a counter row stays locked until its
-- transaction's COMMIT (a WAL flush), so one account's creates on one row
-- commit one at a time: bench/load.py's "create" (one account, 32
-- connections) fell to 35% of its rate that way.
--
-- Locks, on a populated database: tasks is locked SHARE for this file's
-- transaction (reads go on; creates and deletes wait) so no task is added
-- or removed while it is counted. The backfill reads
-- tasks_user_id_created_at_idx once and writes up to 64 rows per account
-- with tasks, into the new table no one else uses yet: about a second per
-- million tasks. users gets only the foreign key's SHARE ROW EXCLUSIVE
-- (sign-ups wait; sign-in and every read go on). All of it runs under this
-- file's lock_timeout and statement_timeout, and applies completely or not
-- at all.
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
    -- 0 to 63; the create_task*.sql files say 64 stripes too.
    -- squawk-ignore prefer-bigint-over-smallint
    stripe smallint NOT NULL,
    -- The limit is at most 10^9 (MAX_TASKS_PER_USER), compared as integer.
    -- squawk-ignore prefer-bigint-over-int
    task_total integer NOT NULL DEFAULT 0,
    CONSTRAINT task_counts_pkey PRIMARY KEY (user_id, stripe),
    CONSTRAINT task_counts_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT task_counts_stripe_check CHECK (stripe BETWEEN 0 AND 63),
    CONSTRAINT task_counts_task_total_check CHECK (task_total >= 0)
);

-- An account's n tasks spread over the 64 stripes: n / 64 each, the first
-- n % 64 one more (no row for a stripe that would count 0), so no stripe
-- is over its share unless the account is over the limit.
INSERT INTO task_counts (user_id, stripe, task_total)
SELECT
    counted.user_id,
    stripes.stripe,
    counted.total / 64 + (stripes.stripe < counted.total % 64)::integer
FROM (
    SELECT
        user_id,
        count(*)::integer AS total
    FROM tasks
    GROUP BY user_id
) AS counted
CROSS JOIN generate_series(0, 63) AS stripes (stripe)
WHERE counted.total / 64 + (stripes.stripe < counted.total % 64)::integer > 0;
