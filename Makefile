# Everyday commands; see CONTRIBUTING.md. Use another interpreter with `make test PYTHON=...`.
PYTHON ?= python3

.PHONY: install lint test bench up

install:
	$(PYTHON) -m pip install -e ".[test,dev]"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

test:
	$(PYTHON) -m pytest

bench:
	$(PYTHON) bench/throughput.py

# Same as `tasker up`, with the interpreter chosen above.
up:
	$(PYTHON) -m cli.main up
