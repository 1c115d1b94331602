-- Rollback of 0001: drops the users table, its constraints and index.
-- Destroys every account; 0002 must be rolled back first (tasks reference users).

DROP INDEX users_email_lower_key;

DROP TABLE users;
