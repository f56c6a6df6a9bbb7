# The two commands of the README. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz lint bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@echo "==> Creating the virtual environment in $(VENV) (first run only)"
	@$(PYTHON) -m venv $(VENV)
	@echo "==> Installing the pinned dependencies from requirements.lock (first run: about a minute)"
	@$(PY) -m pip install --disable-pip-version-check --progress-bar off --require-hashes -r requirements.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@echo "==> Ready"
	@touch $(STAMP)

## make run: start API + worker with the demo agency (embedded PostgreSQL/Redis unless URLs are set)
run: $(STAMP)
	$(VENV)/bin/orchestrator run --demo

## make test: the whole suite against real PostgreSQL and Redis
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make fuzz: the OpenAPI fuzzer at 300 examples per operation and mode (make test runs 15)
fuzz: $(STAMP)
	ORCHESTRATOR_FUZZ_EXAMPLES=$${ORCHESTRATOR_FUZZ_EXAMPLES:-300} $(PY) -m pytest tests/fuzz $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench migrations
	$(VENV)/bin/ruff format --check src tests bench migrations
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py

## regenerate the lock file after changing dependencies in pyproject.toml
lock: $(STAMP)
	$(VENV)/bin/pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --extra dev --generate-hashes --allow-unsafe --strip-extras -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .data
