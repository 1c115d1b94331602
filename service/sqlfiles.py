"""The one grammar of a query file's header (sql/README.md, "How to read the
files"), read by service/db.py at startup and by scripts/sql-review. Standard
library only. A file holds one statement, run as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

SHAPES = (":one", ":many", ":val", ":exec")
RESERVED = frozenset({"conn"})  # db.one(name, conn=...) takes it

_NAME = re.compile(r"^-- name: (?P<name>[a-z][a-z0-9_]*) (?P<shape>:\w+)$")
_PARAMS = re.compile(r"^-- Params: (?P<text>.+)$")
_CONTINUED = re.compile(r"^-- {2,}(?P<text>\S.*)$")  # indented under its line
_PARAM = re.compile(r"^\$(?P<number>\d+) (?P<name>[a-z][a-z0-9_]*) (?P<type>\w+(?:\[\])?)$")
_INDEX = re.compile(r"^-- Index: (?P<name>\w+)(?P<rest>.*)$")
# A placeholder and its cast, in statement text without comments or strings.
_PLACEHOLDER = re.compile(r"\$(?P<number>\d+)(?:::(?P<type>\w+(?:\[\])?))?")
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


class QueryFileError(Exception):
    """A query file the service cannot run by name."""


@dataclass(frozen=True, slots=True)
class Param:
    number: int
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class Query:
    name: str  # what db.one/many/val/exec take
    shape: str
    sql: str  # exactly what the server runs
    path: Path
    params: tuple[Param, ...]  # $1..$n, in order
    purpose: str
    index: str  # the Index line's text
    index_name: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def leading_comments(text: str) -> list[str]:
    """The comment lines at the top of a file, up to its first other line."""
    return list(takewhile(lambda line: line.startswith("--"), text.splitlines()))


def prose(lines: list[str]) -> str:
    """Comment lines as one paragraph."""
    return " ".join(" ".join(line[2:] for line in lines).split())


def placeholders(sql: str) -> dict[int, set[str | None]]:
    """Each `$n` outside comments and strings, with its casts (None for a bare one)."""
    found: dict[int, set[str | None]] = {}
    for match in _PLACEHOLDER.finditer(_NOT_CODE.sub(" ", sql)):
        found.setdefault(int(match["number"]), set()).add(match["type"])
    return found


def _params(text: str, where: Path) -> tuple[Param, ...]:
    params = []
    for item in text.split(","):
        match = _PARAM.match(item.strip())
        if not match:
            raise QueryFileError(f"{where}: a parameter is '$<n> <name> <type>', not {item!r}")
        params.append(Param(int(match["number"]), match["name"], match["type"]))
    if [p.number for p in params] != list(range(1, len(params) + 1)):
        raise QueryFileError(f"{where}: Params must be $1, $2, ... in order")
    names = [p.name for p in params]
    if len(set(names)) != len(names) or RESERVED & set(names):
        raise QueryFileError(f"{where}: parameter names must differ and not be {sorted(RESERVED)}")
    return tuple(params)


def read(path: Path) -> Query:
    """The statement of one query file."""
    text = path.read_text(encoding="utf-8")
    header = leading_comments(text)
    name_line = _NAME.match(header[0]) if header else None
    if not name_line:
        raise QueryFileError(f"{path}: first line must be '-- name: <name> <shape>'")
    name, shape = name_line["name"], name_line["shape"]
    if name != path.stem:
        raise QueryFileError(f"{path}: header names {name!r}, file is {path.stem!r}")
    if shape not in SHAPES:
        raise QueryFileError(f"{path}: shape {shape!r} is not one of {SHAPES}")
    rest = header[1:]
    params: tuple[Param, ...] = ()
    if rest and (match := _PARAMS.match(rest[0])):
        more = list(takewhile(_CONTINUED.match, rest[1:]))
        params = _params(" ".join([match["text"], *(line[2:].lstrip() for line in more)]), path)
        rest = rest[1 + len(more) :]
    at = next((i for i, line in enumerate(rest) if _INDEX.match(line)), len(rest))
    purpose = prose(rest[:at])
    if not purpose or at == len(rest):
        raise QueryFileError(f"{path}: needs a purpose, then an '-- Index:' line")
    used = placeholders(text)  # each named and cast as the header says; each named one used
    if sorted(used) != [p.number for p in params]:
        raise QueryFileError(
            f"{path}: the statement uses ${sorted(used)}, "
            f"the header names ${[p.number for p in params]}"
        )
    for p in params:
        if used[p.number] != {p.type}:
            raise QueryFileError(
                f"{path}: ${p.number} {p.name} is cast as {sorted(map(str, used[p.number]))}, "
                f"every use must be ::{p.type}"
            )
    index = prose(rest[at:]).removeprefix("Index: ")
    return Query(name, shape, text, path, params, purpose, index, _INDEX.match(rest[at])["name"])


def load(root: Path) -> dict[str, Query]:
    """Every query file's statement under `root`, by its name."""
    queries: dict[str, Query] = {}
    for path in sorted(root.rglob("*.sql")):
        query = read(path)
        if query.name in queries:
            where = queries[query.name].path
            raise QueryFileError(f"{path}: {query.name!r} is also defined in {where}")
        queries[query.name] = query
    return queries
