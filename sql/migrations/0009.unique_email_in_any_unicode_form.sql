-- Migration 0009: one password account per mailbox, whatever the Unicode
-- form of its address.
-- depends: 0008.add_sessions
--
-- What: users_password_email_key replaces users_password_email_lower_key.
-- It compares emails as lower(normalize(email, NFKC)) instead of
-- lower(email): composed and decomposed "é", fullwidth letters and other
-- compatibility forms, and letter case all name one address. Emails are
-- still stored as typed; sign-up (create_user) refuses an address another
-- password account has in any such form, and sign-in (get_user_for_signin)
-- finds the account by any of them. lower() follows the database's
-- LC_CTYPE: under C.UTF-8 or a language locale it lowers every letter
-- with a case (Neon's default), under plain "C" only A to Z.
--
-- Collisions among existing rows: two password accounts whose emails were
-- different before (different Unicode forms) may be one address now. The
-- oldest of them (created_at, then id) keeps the address; each other one
-- is kept too, with its tasks, but its new column email_duplicate_of names
-- the account that kept it, and it is left out of the uniqueness rule and
-- of sign-in. Nothing is deleted or rewritten. To see them:
--
--     SELECT id, email, created_at, email_duplicate_of
--     FROM users WHERE email_duplicate_of IS NOT NULL;
--
-- A DBA resolves each with its owner: delete it (its tasks go with it), or
-- move its tasks to the account that kept the address
-- (UPDATE tasks SET user_id = <kept> WHERE user_id = <duplicate>, the
-- quota's task_counts of both recounted), or give it another email and
-- set email_duplicate_of back to NULL. The column is NULL for every
-- account made after this migration: the index refuses the collision.
--
-- Locks: users is read once to find the collisions and once to build the
-- index, which blocks its writes meanwhile (sign-ups, renames; about a
-- second per million accounts; reads go on), all under this file's
-- lock_timeout. In exchange the file is one transaction: sign-up never runs
-- without a uniqueness rule. tasks is not touched.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- Nullable, no default: adding it rewrites nothing. No foreign key: it is
-- a record of what this migration did, kept when the account it names is
-- deleted later.
ALTER TABLE users ADD COLUMN email_duplicate_of uuid;

-- Validated here: the column is NULL in every row.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_email_duplicate_of_check CHECK (
    email_duplicate_of <> id
);

-- Each password account whose address an older one has, in any form.
UPDATE users
SET email_duplicate_of = ranked.kept
FROM (
    SELECT
        id,
        first_value(id) OVER (
            PARTITION BY lower(normalize(email, NFKC))  -- noqa: CP02
            ORDER BY created_at, id
        ) AS kept
    FROM users
    WHERE password_hash IS NOT NULL
) AS ranked
WHERE
    users.id = ranked.id
    AND ranked.kept <> ranked.id;

-- Not CONCURRENTLY: see Locks above.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_password_email_key ON users (
    lower(normalize(email, NFKC))  -- noqa: CP02
)
WHERE password_hash IS NOT NULL AND email_duplicate_of IS NULL;

-- Replaced by users_password_email_key, built above in this same
-- transaction, so sign-up never runs without a uniqueness rule.
-- squawk-ignore ban-drop-index, require-concurrent-index-deletion
DROP INDEX users_password_email_lower_key;
