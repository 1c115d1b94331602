"""Tasks: the routes under /api/tasks and /api/{user_id}/tasks, their schemas,
ETag and If-Match (conditional) and the signed keyset cursors (cursor)."""
