# taskops: `make run` to see it, `make test` to check it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The newest Python >= 3.11 that actually runs (a pyenv shim for a version
# that is not selected fails, and is skipped).
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; \
	then echo $$p; break; fi; done)
VENV ?= .venv
# An extra requirement for Django itself, e.g. DJANGO='Django>=6.1,<6.2'.
DJANGO ?=
PORT ?= 8000
# make bench STACKS=both|pg|sqlite (default: the configured stack)
STACKS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell echo '$(DJANGO)' | md5sum | cut -c1-8)

.PHONY: help install run test lint typecheck pytest bench soak soak-ci clean

help:
	@echo "make run    - install, migrate, demo data, then web + worker + beat + demo traffic"
	@echo "make test   - install dev dependencies, then ruff, import-linter, mypy and pytest"
	@echo "make bench  - benchmarks (STACKS=both: PostgreSQL + Redis and SQLite + filesystem)"
	@echo "make soak   - 20,000 tasks through killed pool children, a broker restart and database cuts (PostgreSQL + Redis, then RabbitMQ)"
	@echo "make clean  - remove var/ (database, broker folders, logs)"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python >= 3.11 found; set PYTHON=/path/to/python3.x" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(if $(DJANGO),'$(DJANGO)')
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# The demo runs in development mode, and says so: the host project's settings
# default to DEBUG off and refuse to start without SECRET_KEY (README,
# "Configuration"). Every command below, and honcho's processes, inherit it.
run: export DEBUG = 1
run: $(STAMP)
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createcachetable
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py taskops_demo seed
	@{ cat Procfile; echo "traffic: python manage.py taskops_demo traffic --interval 3"; } > var/Procfile.run
	@echo
	@echo "  Admin: http://127.0.0.1:$(PORT)/admin/   (user admin; its password is printed once, when seed creates it)"
	@echo "  Ctrl-C stops every process."
	@echo
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho -f var/Procfile.run -d . start -p $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test: lint typecheck pytest $(if $(findstring postgres,$(DATABASE_URL)),soak-ci)

# STACKS=both: PostgreSQL + Redis and SQLite + filesystem, each measured (bench/stacks.py).
bench: $(STAMP)
	TASKOPS_BENCH_STACKS=$(STACKS) $(BIN)/python -m bench

# Outside `make test`: minutes long. It needs PostgreSQL on 127.0.0.1:5432 and
# the redis-server and rabbitmq-server binaries (it starts servers of its own).
SOAK_ARGS ?= --tasks 20000
soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak --broker redis $(SOAK_ARGS)
	$(BIN)/python -m tests.faults.soak --broker rabbitmq $(SOAK_ARGS)

# The CI-sized soak: 2,000 tasks, one pool child killed, one database cut, one
# Redis restart. `make test` runs it after pytest when DATABASE_URL is PostgreSQL.
soak-ci: $(STAMP)
	$(BIN)/python -m tests.faults.soak --broker redis --tasks 2000 --faults kill,cut,restart

clean:
	rm -rf var
