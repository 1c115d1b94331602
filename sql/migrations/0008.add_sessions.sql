-- Migration 0008: sessions (a row a token the service issued) and
-- better_auth_departures (deleted accounts linked to Better Auth).
-- depends: 0007.add_task_search_index
--
-- What: a row for every live token of the service's own (sign-up, sign-in,
-- password change): its id is the token's `jti` claim, with the account it
-- belongs to and the moment it expires (the token's `exp`). A token is
-- accepted only while its row exists; each worker checks that at most every
-- half second a token (service/auth/tokens.py), so deleting the row ends
-- the token everywhere within a second. Sign-out deletes one row, "sign out
-- everywhere" and a password change delete all of an account's, deleting
-- the account deletes them with it (ON DELETE CASCADE).
--
-- Cleanup without a cron job: every new session (create_session.sql,
-- change_password.sql) also deletes up to 10 sessions that have expired,
-- oldest first, through sessions_expires_at_idx. Expired rows grant
-- nothing (the token's `exp` is checked first); they only take space, and
-- each sign-in removes more of them than it adds.
--
-- better_auth_departures: when an account linked to Better Auth is deleted
-- (DELETE /api/auth/me), its row here is gone, but the person is still
-- signed in at Better Auth and their token is still valid there. Its
-- issuer, subject and the moment of deletion are kept so that
-- link_better_auth_user refuses the tokens issued up to that second
-- instead of making a new, empty account from them; a token Better Auth
-- issues later makes one. A row is needed only while a token issued before
-- it can be alive, so delete_user.sql deletes rows older than 30 days (far
-- past Better Auth's token lifetime, 15 minutes by default); it holds no
-- email or name.
--
-- Deploy: tokens issued before this release carry no `jti` and are refused
-- from then on (401): everyone signs in once more. There is nothing to
-- backfill.
--
-- Locks: new, empty tables; users gets the foreign key's SHARE ROW
-- EXCLUSIVE for the moment of this transaction (sign-ups wait; reads go
-- on), under this file's lock_timeout.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE TABLE sessions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT sessions_expires_at_check CHECK (expires_at > created_at)
);

-- Serves ending every session of one account and the ON DELETE CASCADE.
-- Not CONCURRENTLY: the table was created above, in this transaction.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Serves the cleanup of expired sessions, oldest first.
-- Not CONCURRENTLY, as above.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE better_auth_departures (
    auth_issuer text NOT NULL,
    auth_subject text NOT NULL,
    departed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT better_auth_departures_pkey PRIMARY KEY (
        auth_issuer, auth_subject
    ),
    -- The limits of users_auth_issuer_check and users_auth_subject_check.
    CONSTRAINT better_auth_departures_auth_issuer_check CHECK (
        char_length(auth_issuer) BETWEEN 1 AND 2048
    ),
    CONSTRAINT better_auth_departures_auth_subject_check CHECK (
        char_length(auth_subject) BETWEEN 1 AND 255
    )
);

-- Serves the cleanup of departures older than 30 days.
-- Not CONCURRENTLY: the table was created above, in this transaction.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX better_auth_departures_departed_at_idx ON better_auth_departures (
    departed_at
);
