# The README's two commands. Each creates .venv (if missing) and installs the package into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-all install lint

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,solvers,sweep]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m trainers.demo

# Fast suite (under 15 minutes on 2 CPU cores); `make test-all` adds the slow tests. The tests run
# in TEST_WORKERS processes (pytest-xdist; `make test TEST_WORKERS=auto` uses every core), each
# test module in one process so that its module-scoped fixtures (a short training run) run once.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope

test: $(VENV)/.installed
	$(PYTEST) -m "not slow" tests

test-all: $(VENV)/.installed
	$(PYTEST) tests

# Static checks (rules in ruff.toml).
lint: $(VENV)/.installed
	$(PY) -m ruff check zoo trainers tests tools
