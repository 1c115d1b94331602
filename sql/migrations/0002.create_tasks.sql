-- Migration 0002: the tasks table and the trigger that stamps every update.
-- depends: 0001.create_users
--
-- Each task belongs to exactly one user and goes when the user goes (ON
-- DELETE CASCADE). The CHECK limits equal the API's validator limits
-- (service/tasks/schemas.py). `version` counts changes: it is the task's
-- ETag and the If-Match compare in the UPDATE/DELETE statements, so two
-- racing writers cannot both win. The trigger keeps updated_at and version
-- right for every UPDATE, from any code path, and keeps created_at fixed.
-- Indexes: tasks_pkey (by id) and tasks_user_id_created_at_idx (a user's
-- tasks by creation time, read forward or backward, ties by id; its leading
-- user_id also serves the ON DELETE CASCADE from users).

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE TABLE tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    title text NOT NULL,
    description text,
    completed boolean NOT NULL DEFAULT FALSE,
    -- Counts the edits of one task: 2^31 of them is not a real risk, and
    -- integer is what If-Match is compared as ($3::integer[]).
    -- squawk-ignore prefer-bigint-over-int
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    -- 1 to 200 characters, not only whitespace.
    CONSTRAINT tasks_title_check CHECK (
        char_length(title) BETWEEN 1 AND 200 AND title ~ '[^[:space:]]'
    ),
    -- At most 2000 characters, or NULL.
    CONSTRAINT tasks_description_check CHECK (char_length(description) <= 2000),
    CONSTRAINT tasks_version_check CHECK (version >= 1),
    CONSTRAINT tasks_updated_at_check CHECK (updated_at >= created_at)
);

-- Not CONCURRENTLY: the table was created above, in this transaction, so
-- no other session can see it yet.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX tasks_user_id_created_at_idx ON tasks (user_id, created_at, id);

-- Every UPDATE: a strictly later updated_at (even within one transaction or
-- one clock tick), the next version, and created_at as it was.
CREATE FUNCTION tasks_stamp_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.version := OLD.version + 1;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_stamp_update_trg
BEFORE UPDATE ON tasks
FOR EACH ROW EXECUTE FUNCTION tasks_stamp_update();
