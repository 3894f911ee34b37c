# Everything a fresh machine needs is installed by these targets themselves.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo demo-replay test test-fast bench lint fuzz model clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	bash scripts/demo.sh

demo-replay: setup
	bash scripts/demo-replay.sh

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not slow"

bench: setup
	$(BIN)/python bench/bench_replay.py

lint: setup
	$(BIN)/ruff check watchdog tests bench
	$(BIN)/mypy
	$(BIN)/pip-audit --skip-editable --progress-spinner off

fuzz: setup
	WATCHDOG_FUZZ_EXAMPLES=1000000 $(BIN)/python -m pytest -q tests/fuzz -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis out
