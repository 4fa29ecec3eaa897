# Two entry points on a fresh machine: `make search` and `make test`.
# torch is pinned to the CPU build these machines hold locally and installed first, so that the
# range in setup.cfg is already satisfied and pip never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install search lint test study study-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Each `make search` is a new run folder, runs/quickstart-DATE-TIME.
search: $(STAMP)
	$(BIN)/attnas search experiments/configs/quickstart.yaml --name quickstart-$$(date +%Y%m%d-%H%M%S)

# The linter's rules are in pyproject.toml ([tool.ruff]); CI runs it first, through `make test`.
lint: $(STAMP)
	$(BIN)/ruff check .

# Two pytest workers, each taking whole test files (module fixtures such as a shared Ray stay in one process): the
# end-to-end tests spend much of their time waiting on Ray, subprocesses and sleeps, so two halve the suite's time.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The search study (benchmarks/search_study.py, issue 9): searches, re-training, transfer, cost-aware search;
# writes its section of benchmarks/RESULTS.md. `make study-quick` is the under-20-minute version.
study: $(STAMP)
	$(BIN)/python -m benchmarks.search_study

study-quick: $(STAMP)
	$(BIN)/python -m benchmarks.search_study --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
