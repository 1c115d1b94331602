-- name: create_user :one
-- Create an account; a taken email (any case) raises users_email_lower_key.
-- Index: users_email_lower_key enforces the uniqueness.
INSERT INTO users (email, password_hash, name)
VALUES ($1::text, $2::text, $3::text)
RETURNING id, email, name, created_at;
