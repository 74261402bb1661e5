# Entry points (see README): `make run` sets up and trains/shows the main result,
# `make test-all` sets up and runs every test (CI), `make test` the fast tier.
# Only Python 3.11 and make are needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-all lint clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/prism-marl train

# The fast tier: everything not marked slow (docs/decisions/0015-test-tiers.md).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -q -m "not slow" --durations=25

# Every test: the fast tier, the learning checks, the smoke matrix, MaBrax compiles.
test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -q --durations=40

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) runs
