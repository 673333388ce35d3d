# fabctl: `make demo` runs the main job on the bundled example case; `make test` runs every check.
# Both need nothing but Python 3.11+: they create .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_HOME := $(CURDIR)/.fabctl-home/demo
FABCTL := FABCTL_HOME=$(DEMO_HOME) FABCTL_OPERATOR=demo-tech $(BIN)/fabctl

.PHONY: demo test test-postgres lint install clean bench octoprint postgres tools

install: $(STAMP)

$(STAMP): pyproject.toml hardware/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "fabctl needs Python 3.11 or newer (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres]' -e ./hardware
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_HOME)
	$(FABCTL) profile check
	$(FABCTL) case new case-42 --mesh examples/case-42/guide.stl --plan examples/case-42/plan.json --units mm
	$(FABCTL) validate case-42 --render $(DEMO_HOME)/pictures
	$(FABCTL) support case-42 --render $(DEMO_HOME)/pictures
	$(FABCTL) printer status sim-laser
	$(FABCTL) print case-42
	$(FABCTL) case show case-42
	$(FABCTL) trace show case-42
	$(FABCTL) trace verify
	@echo "validation and support pictures: $(DEMO_HOME)/pictures"
	@echo "job file and layer preview: $(DEMO_HOME)/cases/case-42/artifacts/job-*/"
	@ls $(DEMO_HOME)/cases/case-42/artifacts/job-*/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# a real OctoPrint 1.11 with its Virtual Printer, in its own venv (.octoprint-venv), for the tests
octoprint:
	hardware/octoprint/install.sh

# the PostgreSQL server programs (Debian's package, when missing), for the store's tests on PostgreSQL
postgres:
	hardware/postgres/install.sh

# the whole suite on SQLite, then the store's tests (marker db) and the PostgreSQL-only tests on a throwaway
# PostgreSQL cluster (tests/conftest.py starts and deletes it)
# Debian tools the tests use (poppler-utils: render and read the report PDF), when missing
tools:
	hardware/tools/install.sh

test: lint octoprint postgres tools
	$(BIN)/fabctl profile check
	$(BIN)/python -m pytest -q -m 'not postgres'
	FABCTL_TEST_DB=postgres $(BIN)/python -m pytest -q -m 'db or postgres'

test-postgres: $(STAMP) postgres
	FABCTL_TEST_DB=postgres $(BIN)/python -m pytest -q -m 'db or postgres'

bench: $(STAMP)
	$(BIN)/python bench/stl_intake.py

clean:
	rm -rf $(VENV) .fabctl-home .pytest_cache .ruff_cache
