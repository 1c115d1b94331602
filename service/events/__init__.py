"""Live events: GET /api/tasks/events, a server-sent event stream of the
caller's task changes (API.md "Live events")."""
