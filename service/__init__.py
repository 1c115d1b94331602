"""todo-api: the JSON API behind the todo web app.

Layers, lowest first (tests/test_layers.py keeps them free of circles):
keys, sqlfiles and docs.operation import nothing of the service; settings,
errors and constraints sit on the schemas; db, logs and metrics on those;
the resource packages (auth, tasks, health, docs) hold each resource's
handlers, schemas and OpenAPI declarations; middlewares and app wire it all.
docs/developing.md names every module."""

__version__ = "0.1.0"
