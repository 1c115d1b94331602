"""What a handler says about itself in the OpenAPI document. `@operation(...)`
only attaches an `Operation` to the handler; service/docs/openapi.py reads
it off each route of the router. Imports nothing of the service, so any
handler module may use it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

# What any JSON body can answer: missing or malformed (400), late (408), too
# large (413), not JSON (415), invalid fields (422).
JSON_BODY = (400, 408, 413, 415, 422)
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
    # OpenAPI links by name: {"operationId": ..., "parameters": {...}}, the
    # operationId without the mount's suffix (each mount links to its own).
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


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
    """One operation: its id is the handler's name in camelCase and its summary
    its docstring's first paragraph, unless given. `problems`: the error
    statuses the handler (and what it calls) can answer; `notes`: what one
    means here when the document's general wording does not fit."""

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
    mounts: tuple[Mount, ...] = ()


def operation(
    *, operation_id: str | None = None, summary: str | None = None, **declared: Any
) -> Callable[[Handler], Handler]:
    """Attach an `Operation` to the handler; it is returned unchanged."""

    def attach(handler: Handler) -> Handler:
        first, *rest = handler.__name__.split("_")
        paragraph = (handler.__doc__ or "").strip().split("\n\n")[0]
        text = summary or " ".join(paragraph.split()).removesuffix(".")
        if not text:
            raise TypeError(f"{handler.__name__}: give a docstring; its first line is the summary")
        op_id = operation_id or first + "".join(word.title() for word in rest)
        handler.openapi_operation = Operation(op_id, text, **declared)  # type: ignore[attr-defined]
        return handler

    return attach


def declared(handler: Any) -> Operation | None:
    return getattr(handler, "openapi_operation", None)
