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

$(STAMP): pyproject.toml hardware/pyproject.toml $(wildcard fabctl/mesh/*.c fabctl/mesh/*.h)
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "fabctl needs Python 3.11 or newer (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres]' -e ./hardware
	touch $(STAMP)

# the whole job on the simulated SL1S-class printer (mock PrusaLink started and stopped by the script, exposure
# scaled down): register, validate, support, print, trace, verify, DRAFT device history record; see
# hardware/demo/demo.sh. DEMO_TIME_SCALE=0.001 (seconds of mock time per second of exposure) by default.
demo: $(STAMP)
	rm -rf $(DEMO_HOME)
	hardware/demo/demo.sh $(DEMO_HOME) $(BIN)/fabctl

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# a real OctoPrint 1.11 with its Virtual Printer, in its own venv (.octoprint-venv), for the tests
octoprint:
	hardware/octoprint/install.sh

# the PostgreSQL server programs (Debian's package, when missing), for the store's tests on PostgreSQL
postgres:
	hardware/postgres/install.sh

# the whole suite on SQLite, the mesh tests again without the compiled kernels, then the store's tests (marker
# db) and the PostgreSQL-only tests on a throwaway PostgreSQL cluster (tests/conftest.py starts and deletes it)
# Debian tools the tests use (poppler-utils: render and read the report PDF), when missing
tools:
	hardware/tools/install.sh

test: lint octoprint postgres tools
	$(BIN)/fabctl profile check
	$(BIN)/python -m pytest -q -m 'not postgres' --durations=15
	# the mesh checks again on the numpy paths, which an install without a C compiler runs
	FABCTL_MESH_KERNELS=0 $(BIN)/python -m pytest -q -m 'not kernels' tests/unit/mesh
	FABCTL_TEST_DB=postgres $(BIN)/python -m pytest -q -m 'db or postgres'

test-postgres: $(STAMP) postgres
	FABCTL_TEST_DB=postgres $(BIN)/python -m pytest -q -m 'db or postgres'

bench: $(STAMP)
	$(BIN)/python bench/stl_intake.py

clean:
	rm -rf $(VENV) .fabctl-home .pytest_cache .ruff_cache
