PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# One set-up command: a virtual environment with torch pinned to the CPU build first,
# then neuropath and its dev tools (pytest, stable-baselines3 for the throughput benchmark).
install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"

# Two workers (the CI machine has 2 cores); tests of one file share a worker and its module fixtures.
# The ten slowest tests are listed at the end, to keep the suite under its 10-minute budget.
test:
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=10

.PHONY: install test
