-- name: create_user :one
-- Create a password account: $1 the email as typed, $2 its bcrypt hash, $3
-- the name. An email another password account has (in any case) raises
-- users_password_email_lower_key.
-- Index: users_password_email_lower_key enforces the uniqueness.
INSERT INTO users (email, password_hash, name)
VALUES ($1::text, $2::text, $3::text)
RETURNING id, email, name, created_at;
