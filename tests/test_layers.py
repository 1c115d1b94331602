"""The service's modules import one another without a circle, counting every
import: at the top, inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SERVICE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The service modules `name` imports, by any kind of import statement."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from service import keys` imports the module service.keys.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name and m != "service"}


GRAPH = {name: imports(name) for name in MODULES}


def cycle_through(start: str) -> list[str] | None:
    """A path of imports from `start` back to itself, if there is one."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(GRAPH[node]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_the_scan_sees_the_imports():
    # If the scan broke, every module would look free of circles.
    assert "service.errors" in GRAPH["service.jsonio"]
    assert "service.settings" in GRAPH["service.db"]
    assert len(MODULES) > 20


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_itself_through_others(name):
    assert cycle_through(name) is None, " -> ".join(cycle_through(name) or [])


def test_errors_render_without_metrics():
    assert "service.metrics" not in GRAPH["service.errors"]


def test_the_leaf_modules_import_nothing_of_the_service():
    for leaf in ("service.keys", "service.sqlfiles", "service.docs.operation"):
        if leaf in GRAPH:
            assert GRAPH[leaf] == set(), (leaf, GRAPH[leaf])
