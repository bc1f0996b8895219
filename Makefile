# Dispo: two commands to know. `make run` sets up and starts the platform; `make test` sets up and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench install clean help

help:
	@echo "make run    set up (virtualenv, install, migrate) and start Dispo on http://127.0.0.1:8000"
	@echo "make test   set up and run the test suite (SQLite, plus PostgreSQL where reachable)"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks; writes BENCHMARKS.md (BENCH_CALLS=1000000 by default)"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Dispo needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dispo serve

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) dispo-data bench-data .pytest_cache .mypy_cache .ruff_cache
