"""The one grammar of a query file's header, read by service/db.py at startup
and by scripts/sql-review for sql/README.md. Standard library only.

    -- name: update_task :one
    -- Params: $1 id uuid, $2 user_id uuid, $3 if_match integer[],
    --     $4 title text
    -- What the query is for, in prose that names the parameters.
    -- Index: tasks_pkey, and why.

Line 1 names the query (the file's stem) and the shape of its result. The
`-- Params:` line, continued on lines indented under it, names every `$n` in
order with the type its cast gives; a type is left out only where it varies
by sort. A file without parameters has no Params line. Then the purpose,
then `-- Index:` with the index that serves it (or `none`).

A listing file has, instead of one Index line, one `-- Sort` entry a sort:

    -- Sort -created_at: tasks_user_id_created_at_idx, backward
    --     ORDER BY created_at DESC, id DESC
    --     AND (created_at, id) < ($5::timestamptz, $6::uuid)

(a line indented deeper than the one above goes on with it), and its
statement marks two lines, `-- per sort: ORDER BY` and `-- per sort:
after the cursor`, written as one sort's entry says. The loader makes two
statements of it per sort, `list_tasks[-created_at]` (the first page: the
cursor line dropped) and `list_tasks[-created_at,after]`, each with the
sort's two lines in place: fixed text, never built from a request.

A listing may also have, before its Sort entries, `-- Search` entries: a
parameter that another index serves better than the sort's.

    -- Search q: tasks_user_id_text_trgm_idx (pg_trgm GIN), q of 3
    --     characters or more

Its statement lines are marked `-- with q` (`-- with q or tags`: kept for
either): the file as written is the statement with every Search, and each
other statement leaves out the lines of the Searches it is not made for.
The loader makes one statement per sort, page and set of Searches:
`list_tasks[title]` with none, `list_tasks[title,q]`, `list_tasks[title,tags]`,
`list_tasks[title,q,tags]` (and each `,after`); the handler chooses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

SHAPES = (":one", ":many", ":val", ":exec")
ORDER_MARK = "-- per sort: ORDER BY"
AFTER_MARK = "-- per sort: after the cursor"
RESERVED = frozenset({"conn"})  # db.one(name, conn=...) takes it

_NAME = re.compile(r"^-- name: (?P<name>[a-z][a-z0-9_]*) (?P<shape>:\w+)$")
_PARAMS = re.compile(r"^-- Params: (?P<text>.+)$")
_CONTINUED = re.compile(r"^-- {2,}(?P<text>\S.*)$")  # indented under its line
_PARAM = re.compile(r"^\$(?P<number>\d+) (?P<name>[a-z][a-z0-9_]*)(?: (?P<type>\w+(?:\[\])?))?$")
_INDEX = re.compile(r"^-- Index: (?P<name>\w+)(?P<rest>.*)$")
_SORT = re.compile(r"^-- Sort (?P<key>-?[a-z_]+): (?P<index>\w+)(?P<rest>.*)$")
_SEARCH = re.compile(r"^-- Search (?P<param>[a-z][a-z0-9_]*): (?P<index>\w+)(?P<rest>.*)$")
_WITH = re.compile(r"-- with (?P<params>[a-z][a-z0-9_]*(?: or [a-z][a-z0-9_]*)*)$")
# A placeholder and its cast, in statement text without comments or strings.
_PLACEHOLDER = re.compile(r"\$(?P<number>\d+)(?:::(?P<type>\w+(?:\[\])?))?")
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*")
_CODE_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|--[^\n]*|\$(?P<number>\d+)")


class QueryFileError(Exception):
    """A query file the service cannot run by name."""


@dataclass(frozen=True, slots=True)
class Param:
    number: int
    name: str
    type: str | None  # None: the cast varies by sort


@dataclass(frozen=True, slots=True)
class Sort:
    key: str  # the API's canonical sort, e.g. "-created_at"
    index: str
    note: str  # the rest of the Sort line, e.g. ", backward"
    order_by: str
    after: str  # the row comparison that starts a page after the cursor


@dataclass(frozen=True, slots=True)
class Search:
    param: str  # the parameter its index serves, e.g. "q"
    index: str
    note: str  # the rest of the Search entry, e.g. " (pg_trgm GIN), q of 3 ..."


@dataclass(frozen=True, slots=True)
class Query:
    name: str  # what db.one/many/val/exec take
    shape: str
    sql: str  # exactly what the server runs
    path: Path
    params: tuple[Param, ...]  # $1..$n, in order
    purpose: str
    index: str  # the Index line's text, or the sort's index and note
    index_name: str
    sorts: tuple[Sort, ...] = ()  # the listing's whitelist, on each of its statements
    sort: Sort | None = None  # this statement's sort
    after: bool = False  # the page after a cursor
    searches: tuple[Search, ...] = ()  # the listing's Search entries
    search: tuple[Search, ...] = ()  # the ones this statement is made for

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def variant(name: str, sort: str, after: bool, searches: tuple[str, ...] = ()) -> str:
    """The name a listing's statement is run by: `list_tasks[title,after]`,
    `list_tasks[title,q,after]` for the one made for the Search entry q,
    `list_tasks[title,q,tags]` for q and tags (in the file's order)."""
    parts = [sort, *searches, "after" if after else None]
    return f"{name}[{','.join(p for p in parts if p)}]"


def leading_comments(text: str) -> list[str]:
    """The comment lines at the top of a file, up to its first other line."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return lines


def prose(lines: list[str]) -> str:
    """Comment lines as one paragraph."""
    return " ".join(" ".join(line[2:] for line in lines).split())


def placeholders(sql: str) -> dict[int, set[str | None]]:
    """Each `$n` in the statement (comments and strings skipped), with the
    casts it is written with (None for a bare one)."""
    found: dict[int, set[str | None]] = {}
    for match in _PLACEHOLDER.finditer(_NOT_CODE.sub(" ", sql)):
        found.setdefault(int(match["number"]), set()).add(match["type"])
    return found


def _continued(lines: list[str], start: int) -> tuple[list[str], int]:
    """The indented lines that continue lines[start - 1]."""
    out: list[str] = []
    first_indent = None
    while start < len(lines) and (match := _CONTINUED.match(lines[start])):
        indent = match.start("text")
        if first_indent is not None and indent > first_indent:
            out[-1] += " " + match["text"]  # indented deeper: the line above goes on
        else:
            out.append(match["text"])
            first_indent = first_indent or indent
        start += 1
    return out, start


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


def check_placeholders(sql: str, params: tuple[Param, ...], where: str) -> None:
    """Every `$n` is named and cast as its header says; every one named is used."""
    used = placeholders(sql)
    if sorted(used) != [p.number for p in params]:
        raise QueryFileError(
            f"{where}: the statement uses ${sorted(used)}, "
            f"the header names ${[p.number for p in params]}"
        )
    for p in params:
        casts = used[p.number]
        if None in casts or len(casts) != 1 or (p.type and casts != {p.type}):
            raise QueryFileError(
                f"{where}: ${p.number} {p.name} is cast as {sorted(map(str, casts))}, "
                f"every use must be ::{p.type or 'one type'}"
            )


def read(path: Path, root: Path) -> list[Query]:
    """The statements of one query file: one, or two per sort of a listing."""
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
    at = 1
    params: tuple[Param, ...] = ()
    if at < len(header) and (match := _PARAMS.match(header[at])):
        more, at = _continued(header, at + 1)
        params = _params(" ".join([match["text"], *more]), path)
    purpose_start = at
    entries = (_INDEX, _SORT, _SEARCH)
    while at < len(header) and not any(entry.match(header[at]) for entry in entries):
        at += 1
    purpose = prose(header[purpose_start:at])
    if not purpose or at == len(header):
        raise QueryFileError(f"{path}: needs a purpose, then '-- Index:' or '-- Sort' lines")
    query = Query(name, shape, text, path, params, purpose, index="", index_name="")
    if index := _INDEX.match(header[at]):  # it and the lines after it
        check_placeholders(text, params, str(path))
        return [
            replace(
                query, index=prose(header[at:]).removeprefix("Index: "), index_name=index["name"]
            )
        ]
    searches = []
    while at < len(header) and (match := _SEARCH.match(header[at])):
        lines, at = _continued(header, at + 1)
        note = " ".join([match["rest"], *lines])
        if match["param"] not in {p.name for p in params}:
            raise QueryFileError(f"{path}: Search {match['param']} names no parameter")
        searches.append(Search(match["param"], match["index"], note))
    sorts = []
    while at < len(header) and (match := _SORT.match(header[at])):
        lines, at = _continued(header, at + 1)
        if [line.split(" ", 1)[0] for line in lines] != ["ORDER", "AND"]:
            raise QueryFileError(f"{path}: Sort {match['key']} needs its ORDER BY and AND lines")
        sorts.append(Sort(match["key"], match["index"], match["rest"], *lines))
    if at != len(header):
        raise QueryFileError(f"{path}: the Sort entries end the header")
    body = text[len("\n".join(header)) :].lstrip("\n")
    return _expand(replace(query, sorts=tuple(sorts), searches=tuple(searches)), root, body)


def _marked(body: list[str], mark: str, path: Path) -> int:
    found = [i for i, line in enumerate(body) if line.rstrip().endswith(mark)]
    if len(found) != 1:
        raise QueryFileError(f"{path}: mark exactly one line with {mark!r}")
    return found[0]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _with(line: str) -> frozenset[str]:
    """The Search parameters a line is marked for (empty: every statement's)."""
    match = _WITH.search(line.rstrip())
    return frozenset(match["params"].split(" or ")) if match else frozenset()


def _without(body: list[str], searches: tuple[Search, ...]) -> list[str]:
    """The statement's lines for a set of Search entries."""
    keep = {s.param for s in searches}
    return [line for line in body if not _with(line) or _with(line) & keep]


def _expand(listing: Query, root: Path, body_text: str) -> list[Query]:
    path = listing.path
    marked = set().union(*map(_with, body_text.splitlines()))
    declared = {s.param for s in listing.searches}
    if marked != declared:
        raise QueryFileError(
            f"{path}: lines are marked '-- with' {sorted(marked)}, "
            f"the Search entries are {sorted(declared)}"
        )
    out = []
    for n in range(len(listing.searches) + 1):
        for searches in combinations(listing.searches, n):
            body = _without(body_text.splitlines(), searches)
            out += _expand_sorts(listing, root, body, searches)
    return out


def _expand_sorts(
    listing: Query, root: Path, body: list[str], searches: tuple[Search, ...]
) -> list[Query]:
    path = listing.path
    order_at, after_at = _marked(body, ORDER_MARK, path), _marked(body, AFTER_MARK, path)
    written = (
        body[order_at].removesuffix(ORDER_MARK).strip(),
        body[after_at].removesuffix(AFTER_MARK).strip(),
    )
    if written not in [(s.order_by, s.after) for s in listing.sorts]:
        raise QueryFileError(f"{path}: the marked lines must be one Sort entry's, as written")
    name, shape, file = listing.name, listing.shape, path.relative_to(root).as_posix()
    params = tuple(s.param for s in searches)
    out = []
    for sort in listing.sorts:
        for after in (False, True):
            lines = list(body)
            lines[order_at] = _indent(lines[order_at]) + sort.order_by
            lines[after_at] = _indent(lines[after_at]) + sort.after
            if not after:
                del lines[after_at]
            # The index it is meant to read: the first Search's (the
            # planner may add the others'), else the sort's.
            served_by = searches[0] if searches else sort
            statement = variant(name, sort.key, after, params)
            page = "the page after the cursor" if after else "the first page"
            for search in searches:
                page += f", {search.param} through {search.index}"
            sql = f"-- name: {name} {shape}\n-- {statement}: {page}, from {file}.\n"
            sql += "\n".join(lines) + "\n"
            used = tuple(p for p in listing.params if p.number in placeholders(sql))
            sql, used = _renumbered(sql, used)
            check_placeholders(sql, used, f"{path} ({statement})")
            out.append(
                replace(
                    listing,
                    name=statement,
                    sql=sql,
                    params=used,
                    index=served_by.index + served_by.note,
                    index_name=served_by.index,
                    sort=sort,
                    after=after,
                    search=searches,
                )
            )
    return out


def _renumbered(sql: str, used: tuple[Param, ...]) -> tuple[str, tuple[Param, ...]]:
    """The statement with its parameters numbered $1..$n in the header's
    order: PostgreSQL needs a type for every number up to the highest, and
    a statement without some lines (the cursor's, a Search's) skips some."""
    new = {p.number: i for i, p in enumerate(used, 1)}

    def number(match: re.Match[str]) -> str:
        if match["number"] is None:  # a comment or a string, as it is
            return match[0]
        return f"${new[int(match['number'])]}"

    sql = _CODE_PLACEHOLDER.sub(number, sql)
    return sql, tuple(replace(p, number=new[p.number]) for p in used)


def load(root: Path) -> dict[str, Query]:
    """Every statement of every query file under `root`, by the name it is
    run by."""
    queries: dict[str, Query] = {}
    for path in sorted(root.rglob("*.sql")):
        for query in read(path, root):
            if query.name in queries:
                where = queries[query.name].path
                raise QueryFileError(f"{path}: {query.name!r} is also defined in {where}")
            queries[query.name] = query
    return queries
