-- Migration 0004: accounts linked to a Better Auth user.
-- depends: 0003.add_task_sort_indexes
--
-- The frontend signs people in with Better Auth. A person's first valid
-- Better Auth token creates their account here, linked by the token's
-- issuer and subject (auth_issuer, auth_subject; unique together in
-- users_auth_identity_key) and never matched by email: Better Auth does not
-- always verify addresses, so an address proves nothing. A linked account
-- has no password here (password_hash NULL), and its email is whatever the
-- token carried, or NULL. users_credentials_check keeps every row exactly
-- one kind: a password account (email and bcrypt hash, no link) or a linked
-- account (issuer and subject, no hash). users_password_hash_check still
-- guards every hash that is stored.
--
-- Email uniqueness narrows to password accounts: users_email_lower_key is
-- replaced by the partial users_password_email_lower_key (same expression,
-- WHERE password_hash IS NOT NULL), which also serves sign-in. A linked
-- account whose address belongs to a password account here is a separate
-- account with separate tasks; neither can reach the other.
--
-- Locks: users is written only at sign-up and at a linked account's first
-- request. The CHECKs scan it and the index builds block its writes for
-- their duration (about a second per million accounts; reads go on), all
-- under this file's lock_timeout. In exchange the file is one transaction:
-- it applies completely or not at all. tasks is not touched.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

-- A linked account has no password here, and maybe no email;
-- users_credentials_check below still requires both of every password
-- account, and sign-in reads only password accounts.
-- squawk-ignore ban-drop-not-null
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

-- A linked account's token may carry no email; password accounts still
-- need one (users_credentials_check).
-- squawk-ignore ban-drop-not-null
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- The token's `iss` (the Better Auth server's URL) and `sub` (its user id,
-- 32 characters by default; not a UUID).
ALTER TABLE users ADD COLUMN auth_issuer text;

ALTER TABLE users ADD COLUMN auth_subject text;

-- Validated here rather than NOT VALID plus a later VALIDATE: see Locks
-- above; both new columns are NULL in every existing row.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_auth_issuer_check CHECK (
    char_length(auth_issuer) BETWEEN 1 AND 2048
);

-- Validated here too, for the same reason: the column is NULL everywhere.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_auth_subject_check CHECK (
    char_length(auth_subject) BETWEEN 1 AND 255
);

-- Validated here: every existing row is a password account, which this
-- accepts, and the scan is short (see Locks above).
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE users ADD CONSTRAINT users_credentials_check CHECK (
    (
        password_hash IS NOT NULL
        AND email IS NOT NULL
        AND auth_issuer IS NULL
        AND auth_subject IS NULL
    )
    OR (
        password_hash IS NULL
        AND auth_issuer IS NOT NULL
        AND auth_subject IS NOT NULL
    )
);

-- Not CONCURRENTLY: see Locks above.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_auth_identity_key ON users (auth_issuer, auth_subject)
WHERE auth_subject IS NOT NULL;

-- Not CONCURRENTLY either, for the same reason as the index above.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_password_email_lower_key ON users (lower(email))
WHERE password_hash IS NOT NULL;

-- Replaced by users_password_email_lower_key, built above in this same
-- transaction, so sign-up never runs without a uniqueness rule.
-- squawk-ignore ban-drop-index, require-concurrent-index-deletion
DROP INDEX users_email_lower_key;
