"""The SQL review kit: every file reviewable on its own, the linters clean,
and sql/README.md generated from the headers and up to date."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SQL = REPO_ROOT / "sql"
BIN = Path(sys.executable).parent
QUERY_FILES = sorted((SQL / "queries").rglob("*.sql"))
MIGRATIONS = sorted(p for p in (SQL / "migrations").glob("*.sql") if ".rollback." not in p.name)


def _generator():
    spec = importlib.util.spec_from_file_location("sql_review", REPO_ROOT / "scripts/sql_review.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sql_readme_is_generated_and_up_to_date():
    expected = _generator().render()
    assert (SQL / "README.md").read_text(encoding="utf-8") == expected, (
        "run: python scripts/sql_review.py"
    )
    for path in QUERY_FILES:
        assert f"({path.relative_to(SQL)})" in expected
    for path in MIGRATIONS:
        assert f"({path.relative_to(SQL)})" in expected


@pytest.mark.parametrize("path", QUERY_FILES, ids=lambda p: p.stem)
def test_every_query_has_a_full_header(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert re.fullmatch(rf"-- name: {path.stem} :(one|many|val|exec)", lines[0])
    header = [line for line in lines[1:] if line.startswith("--")]
    assert len(header) >= 2, "a purpose line and an -- Index: line"
    assert not header[0].startswith("-- Index:"), "say what the query is for first"
    assert any(re.match(r"-- Index: \w+", line) for line in header)
    assert "SELECT *" not in path.read_text(encoding="utf-8").upper()


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: p.stem)
def test_every_migration_has_a_header_a_rollback_and_named_objects(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"-- Migration {path.name[:4]}: ")
    rollback = path.with_name(path.name.removesuffix(".sql") + ".rollback.sql")
    assert rollback.read_text(encoding="utf-8").startswith(f"-- Rollback of {path.name[:4]}: ")
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    # Unnamed constraints and indexes get names PostgreSQL makes up; ours
    # are what error mapping and reviewers key on.
    assert not re.search(r"\b(PRIMARY KEY|UNIQUE|CHECK|FOREIGN KEY)\b", _without_named(code))
    for statement in re.findall(r"CREATE (?:UNIQUE )?INDEX[^;]*", code):
        assert re.match(r"CREATE (UNIQUE )?INDEX (CONCURRENTLY )?\w+ ON ", statement), statement
    assert "SET LOCAL lock_timeout" in code


def _without_named(code: str) -> str:
    """The text with every `CONSTRAINT name <kind> (...)` clause removed."""
    code = re.sub(r"CONSTRAINT \w+ (PRIMARY KEY|UNIQUE|CHECK|FOREIGN KEY)", "", code)
    return re.sub(r"CREATE UNIQUE INDEX \w+", "", code)  # named, checked separately


def test_sqlfluff_is_clean():
    result = subprocess.run(
        [str(BIN / "sqlfluff"), "lint", "sql/", "--nocolor"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_squawk_is_clean_on_every_migration_and_rollback():
    files = sorted(str(p.relative_to(REPO_ROOT)) for p in (SQL / "migrations").glob("*.sql"))
    result = subprocess.run(
        [str(BIN / "squawk"), "--reporter", "gcc", *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
