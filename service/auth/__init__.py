"""Accounts: sign-up, sign-in and /me (routes), bcrypt (passwords), our HS256
tokens, Better Auth tokens (betterauth) and the auth middleware (tokens)."""
