"""todo-api: the JSON API behind the todo web app.

docs/developing.md names every module and the layers tests/test_layers.py keeps."""

__version__ = "0.1.0"
