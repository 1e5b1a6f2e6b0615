# Mixdown: every developer and CI entry point. `make up` then `make test` on a bare machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
PY := .venv/bin/python
DEVSTACK := deploy/devstack/devstack
PYTEST_ARGS ?=

.PHONY: help venv fmt lint typecheck test test-unit test-integration test-e2e up down status logs bench clean

help:
	@echo "make up | down | status | logs | test | test-unit | test-integration | lint | typecheck | fmt | bench"

# The Python environment: uv from PyPI, the locked dependencies, Python 3.11 from the machine.
# deploy/devstack/bootstrap-uv finds uv or installs it into ~/.cache/mixdown/uv (works on a bare Debian 12).
.venv/.synced: uv.lock pyproject.toml
	"$$(deploy/devstack/bootstrap-uv)" sync --frozen --python python3.11
	@touch $@

venv: .venv/.synced

fmt: venv
	.venv/bin/ruff format libs services mixdown tests bench
	.venv/bin/ruff check --fix libs services mixdown tests bench

lint: venv
	.venv/bin/ruff format --check libs services mixdown tests bench
	.venv/bin/ruff check libs services mixdown tests bench

typecheck: venv
	.venv/bin/mypy libs services mixdown tests bench

test-unit: venv
	$(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

test-integration: venv
	$(PY) -m pytest -m "integration or e2e" $(PYTEST_ARGS)

# The README's test command: lint, types, then every test (unit, integration, e2e) against the real stack.
test: lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

# The local stack (deploy/devstack/devstack): installs what is missing, starts everything, waits until healthy.
up: venv
	$(DEVSTACK) up

down:
	$(DEVSTACK) down

status:
	$(DEVSTACK) status

logs:
	$(DEVSTACK) logs $(LOGS)

bench: venv
	$(PY) -m bench $(BENCH_ARGS)

clean: down
	rm -rf var .venv
