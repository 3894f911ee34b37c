# Everything a fresh machine needs is installed by these targets themselves.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

LOCK := requirements.lock
LOCK_VENV := .venv-lock

.PHONY: setup demo demo-replay test test-fast bench lint fuzz model clean lock

setup: $(STAMP)

# Every dependency at the version in $(LOCK) (the same set CI and the image get).
$(STAMP): pyproject.toml $(LOCK) scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

# Re-resolve $(LOCK) from pyproject.toml (after adding or bumping a dependency), in an
# environment of its own so that pip-tools is no dependency of the project. Commit the result.
lock:
	test -x $(LOCK_VENV)/bin/python || $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q "pip-tools==7.*"
	$(LOCK_VENV)/bin/pip-compile -q --extra dev --strip-extras --no-emit-index-url \
	    --no-emit-find-links --allow-unsafe --newline lf --output-file $(LOCK) pyproject.toml

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
	rm -rf $(VENV) $(LOCK_VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis out
