-- Migration 0019: sign-out for accounts linked to Better Auth.
-- depends: 0018.validate_simpler_task_checks
--
-- What: POST /api/auth/signout ends a Better Auth token here, or with
-- {"everywhere": true} every token of the account issued up to that
-- second; a token Better Auth issues later works. Those tokens have no
-- session row (Better Auth keeps its sessions), so what is ended is kept
-- instead, like better_auth_departures keeps a deleted account:
--
-- users.better_auth_signed_out_at: the moment of the last sign-out
-- everywhere of a linked account (NULL: never). A token whose `iat` is at
-- or before it is refused (better_auth_token_is_live.sql). One value a
-- row, overwritten by the next sign-out: nothing to clean. Password
-- accounts never set it (their sign-out ends sessions rows).
--
-- better_auth_ended_tokens: one row a token signed out alone, keyed by the
-- SHA-256 of its signed part (header and claims as sent, before the
-- signature): the token's own identity, as Better Auth's tokens carry no
-- `jti`, and a signature that can be re-encoded (ECDSA's is malleable)
-- does not change it. expires_at is the token's `exp`: past it (and the
-- verifier's leeway) the row grants nothing, so end_better_auth_token.sql
-- deletes up to 10 expired rows, oldest first, each time it adds one (no
-- cron job). No link to
-- users: the digest names one token, and a deleted account's tokens are
-- refused through better_auth_departures already.
--
-- Each worker checks a Better Auth token at most every half second
-- (service/auth/tokens.py) with one statement over users_pkey and
-- better_auth_ended_tokens_pkey, so a sign-out reaches every worker and
-- replica within a second.
--
-- Locks: users gets a nullable column without a default (a catalog
-- change, no rewrite) under a brief ACCESS EXCLUSIVE lock, bounded by this
-- file's lock_timeout; the table is new.

-- Fail fast instead of queueing traffic behind a lock; both reset at COMMIT
-- (yoyo runs each migration in one transaction).
SET LOCAL lock_timeout = '5s';

SET LOCAL statement_timeout = '1min';

ALTER TABLE users ADD COLUMN better_auth_signed_out_at timestamptz;

CREATE TABLE better_auth_ended_tokens (
    token_digest bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT better_auth_ended_tokens_pkey PRIMARY KEY (token_digest),
    -- A SHA-256 digest, nothing else.
    CONSTRAINT better_auth_ended_tokens_token_digest_check CHECK (
        octet_length(token_digest) = 32
    )
);

-- Serves the cleanup of expired rows, oldest first.
-- Not CONCURRENTLY: the table was created above, in this transaction.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX better_auth_ended_tokens_expires_at_idx ON better_auth_ended_tokens (
    expires_at
);
