-- name: create_user :one
-- Create an account: $1 the email as typed, $2 its bcrypt hash, $3 the name. A
-- taken email (in any case) raises users_email_lower_key.
-- Index: users_email_lower_key enforces the uniqueness.
INSERT INTO users (email, password_hash, name)
VALUES ($1::text, $2::text, $3::text)
RETURNING id, email, name, created_at;
