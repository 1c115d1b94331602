"""What a handler says about itself in the OpenAPI document. `@operation(...)`
only attaches an `Operation` to the handler; service/docs/openapi.py reads
it off each route of the router. Imports nothing of the service, so any
handler module may use it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

# The statuses every JSON body can answer: no body or malformed JSON (400),
# too large (413), not JSON (415), invalid fields (422).
JSON_BODY = (400, 413, 415, 422)
DATABASE = 503  # any handler that runs a query

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Answer:
    """A response that is not a problem: its description, body schema (a
    marshmallow schema or a JSON Schema dict; None for no body) and the
    names of the components/headers it carries."""

    description: str
    schema: Any = None
    headers: tuple[str, ...] = ()
    content_type: str = "application/json"


@dataclass(frozen=True)
class Mount:
    """A path prefix a family of routes is served under, and what it adds
    to each of their operations."""

    prefix: str
    tag: str
    operation_suffix: str = ""
    parameters: tuple[dict[str, Any], ...] = ()
    problems: tuple[int, ...] = ()
    notes: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One operation. `problems` are the error statuses the handler (and what
    it calls) can answer; the 401 and 503 of the bearer-token check come with
    `public=False`. `notes` say what a status means here when the document's
    general wording does not fit."""

    operation_id: str
    summary: str
    ok: Mapping[int, Answer]
    problems: tuple[int, ...] = ()
    notes: Mapping[int, str] = field(default_factory=dict)
    tag: str | None = None  # None: the mount's
    description: str | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    query: Any = None  # a marshmallow schema: one parameter per field
    body: Any = None  # a marshmallow schema for the JSON request body
    body_required: bool = True
    public: bool = False
    mounts: tuple[Mount, ...] = ()


def operation(operation_id: str, **declared: Any) -> Callable[[Handler], Handler]:
    """Attach an `Operation` to the handler; it is returned unchanged."""
    op = Operation(operation_id, **declared)

    def attach(handler: Handler) -> Handler:
        handler.openapi_operation = op  # type: ignore[attr-defined]
        return handler

    return attach


def declared(handler: Any) -> Operation | None:
    return getattr(handler, "openapi_operation", None)
