# Shipyard: every target sets up what it needs first (`make setup` is quick when nothing changed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.shipyard-installed
PIP_VERSION := 26.3

SPEC   ?= specs/penguins.toml
RUNS   ?= artifacts/runs
SQL_URL ?= sqlite:///artifacts/penguins.db
AS_OF  ?= 2024-01-08T00:00:00
MODELS ?= models

.PHONY: help setup demo train train-sql penguins-db reproduce export test lint bench clean

help:
	@echo "make demo       set up, then train, export and publish the penguins model end to end (artifacts/demo)"
	@echo "make test       set up, then lint and run the whole test suite"
	@echo "make train      train SPEC (default $(SPEC)) into $(RUNS)/<run_id>/"
	@echo "make penguins-db  load the penguins rows into a SQLite table with timestamps ($(SQL_URL))"
	@echo "make train-sql  train from that table as of AS_OF (default $(AS_OF))"
	@echo "make reproduce  retrain the newest run from its snapshot and check its weights hash"
	@echo "make export     export the newest run in $(RUNS) to $(MODELS)/<name>/<version>/"
	@echo "make bench      run the benchmarks (table on stdout, JSON in artifacts/bench/)"
	@echo "make lint       ruff"

setup: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

demo: setup
	PY=$(PY) bash scripts/demo.sh

train: setup
	$(PY) -m train --spec $(SPEC) --out $(RUNS)

penguins-db: setup
	$(PY) -m train.sql_table --url $(SQL_URL)

train-sql: penguins-db
	$(PY) -m train --spec $(SPEC) --source $(SQL_URL) --as-of $(AS_OF) --out $(RUNS)

reproduce: setup
	@latest=$$(ls -1d $(RUNS)/*/ 2>/dev/null | grep -v '/\.' | sort | tail -n 1); \
	if [ -z "$$latest" ]; then echo "no run in $(RUNS): make train first" >&2; exit 2; fi; \
	$(PY) -m train --reproduce $$latest

export: setup
	@latest=$$(ls -1d $(RUNS)/*/ 2>/dev/null | grep -v '/\.' | sort | tail -n 1); \
	if [ -z "$$latest" ]; then echo "no run in $(RUNS): make train first" >&2; exit 2; fi; \
	$(PY) -m export --run $$latest --model-base-path $(MODELS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

clean:
	rm -rf artifacts models .pytest_cache .ruff_cache
