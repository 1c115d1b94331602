-- Migration 0001: the users table.
--
-- One row per account. Emails are stored as the person typed them and are
-- unique regardless of case (users_email_lower_key, which also serves the
-- sign-in lookup by lower(email)). The CHECK limits equal the API's
-- validator limits (service/auth/schemas.py), so bypassing the application
-- cannot store what the API would refuse.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

CREATE TABLE users (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    email text NOT NULL,
    password_hash text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    -- RFC 5321 caps an address at 254 characters; one @ with text around it.
    CONSTRAINT users_email_check CHECK (
        char_length(email) <= 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
    ),
    -- 1 to 100 characters, not only whitespace.
    CONSTRAINT users_name_check CHECK (
        char_length(name) BETWEEN 1 AND 100 AND name ~ '[^[:space:]]'
    ),
    -- Only a bcrypt hash is ever stored, never a password.
    CONSTRAINT users_password_hash_check CHECK (
        password_hash ~ '^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$'
    )
);

-- Not CONCURRENTLY: the table was created above, in this transaction, so
-- no other session can see it yet.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
