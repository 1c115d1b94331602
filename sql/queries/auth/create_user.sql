-- name: create_user :one
-- Params: $1 email text, $2 password_hash text, $3 name text
-- Create a password account: the email as typed, its bcrypt password_hash,
-- the name. An email another password account has (in any case) raises
-- users_password_email_lower_key.
-- Index: users_password_email_lower_key enforces the uniqueness.
INSERT INTO users (email, password_hash, name)
VALUES ($1::text, $2::text, $3::text)
RETURNING id, email, name, created_at;
