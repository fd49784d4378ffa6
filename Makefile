# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -> creates .venv, installs polymodal, runs the quickstart on the embedded default
#   make test   -> creates .venv, installs with dev extras, runs lint, type-check and the test suite
# Both install the exact versions in constraints.txt (pyproject.toml keeps open ranges for library
# users); `make lock` re-resolves pyproject.toml's ranges and rewrites constraints.txt.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/quickstart
CONSTRAINTS ?= constraints.txt

.PHONY: demo test lint typecheck pytest install clean bench lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev,serve,compress,audio,generate,multilingual]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/polymodal quickstart --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/mypy

# two workers (or one per core): the slow tests are subprocess runs that mostly wait on imports
# and single-threaded Python; whole files stay on one worker so module fixtures run once
pytest: install
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# lint (ruff, then mypy: about a minute on one core from a cold cache) runs beside the test suite, not before it
test: install
	$(MAKE) --no-print-directory -j2 lint pytest

bench: install
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev,serve,compress,audio,generate,multilingual,bench]'
	$(BIN)/python benchmarks/run_all.py

# resolve pyproject.toml's ranges afresh (pip's resolver, nothing installed) into constraints.txt;
# the next make install then moves .venv to the new pins
lock: $(BIN)/python
	$(BIN)/python tools/lock_constraints.py --out $(CONSTRAINTS)

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
