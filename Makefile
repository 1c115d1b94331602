# The two commands of the README:
#   make run    set up, migrate and serve on http://localhost:8000
#   make test   set up, then lint, run the whole test suite and fuzz the API
# Both build .venv from the pinned requirements when it is missing or stale,
# and start the local PostgreSQL cluster when it is not answering; `make test`
# also installs Debian's pgbouncer package when it is missing (as root) and
# starts Redis (installing it the same way) when nothing answers on 6379.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint lint-sql fuzz image-smoke install betterauth postgres pgbouncer redis bench-tools clean

run: install postgres
	$(BIN)/todo-api migrate
	exec $(BIN)/todo-api serve

test: install betterauth postgres pgbouncer redis lint
	$(BIN)/pytest
	$(BIN)/python fuzz/run.py

fuzz: install postgres
	$(BIN)/python fuzz/run.py

lint: install lint-sql
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

# The SQL review kit (sql/README.md says what each part checks). ruff is
# given the generator by name: `ruff check .` skips files without .py. The
# generator reads a throwaway database's catalog, hence postgres.
lint-sql: install postgres
	$(BIN)/sqlfluff lint sql/ --nocolor
	$(BIN)/squawk sql/migrations/*.sql
	$(BIN)/python scripts/sql-review --check
	$(BIN)/ruff check scripts/sql-review
	$(BIN)/ruff format --check scripts/sql-review

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet -e .
	touch $@

# The real Better Auth server the tests sign people in with (Node and npm,
# the versions pinned in its package-lock.json).
BETTERAUTH := tests/betterauth
BETTERAUTH_STAMP := $(BETTERAUTH)/node_modules/.installed

betterauth: $(BETTERAUTH_STAMP)

$(BETTERAUTH_STAMP): $(BETTERAUTH)/package.json $(BETTERAUTH)/package-lock.json
	cd $(BETTERAUTH) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

postgres:
	scripts/ensure-postgres

# Debian's pgbouncer binary; the tests run their own instance (tests/pgservers.py).
pgbouncer:
	scripts/ensure-pgbouncer

# The rate-limit tests share counts through a real Redis.
redis:
	scripts/ensure-redis

# Not part of `make test`: what bench/ needs besides the venv and PostgreSQL.
bench-tools: install postgres
	scripts/ensure-wrk

# Not part of `make test`: builds a Debian base and the image (about a minute).
image-smoke:
	scripts/image-smoke

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info $(BETTERAUTH)/node_modules
