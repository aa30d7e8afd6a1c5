# Kiln: `make run` starts the server with the embedded default configuration;
# `make test` installs what the tests need (Debian peers included) and runs everything.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kiln-installed
DATA   ?= data
PYTEST_ARGS ?=
# fuzzing: examples per target and weight in `make fuzz` (about an hour on 2 cores); `make test` runs
# tests/fuzz with 100 (KILN_FUZZ_EXAMPLES), the same examples every run
FUZZ_EXAMPLES ?= 10000
# schema check: requests per operation of OME's ome.yml in `make test` (53 s measured at 30, 2 cores)
SCHEMA_EXAMPLES ?= 25
# ... and the time they may take: on a busy machine slow operations get fewer requests (at least 5)
SCHEMA_SECONDS ?= 75

.PHONY: run test install peers lint style typecheck layers unit e2e schema fuzz bench clean chaos soak

$(BIN)/python:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "installing python3-venv (needed to create $(VENV))"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)

# the hot modules setup.py compiles with mypyc: editing one reinstalls (rebuilds) before the next run or test
COMPILED_SRC := $(shell sed -n 's/^    "\(kiln\/[^"]*\.py\)",$$/\1/p' setup.py)
HAS_PY_HEADERS := import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))

$(STAMP): pyproject.toml setup.py $(COMPILED_SRC) | $(BIN)/python
	@command -v gcc >/dev/null && $(BIN)/python -c '$(HAS_PY_HEADERS)' || { \
	  echo "installing gcc and python3-dev (mypyc compiles Kiln's hot modules with them)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q gcc python3-dev \
	  || echo "gcc/python3-dev not installed: Kiln installs as pure Python (slower ingest)"; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

run: install
	$(BIN)/kiln serve -d $(DATA)

peers:
	./scripts/install-peers.sh

# lint = style, types and layers, in that order (each its own target, so each can run alone)
lint: style typecheck layers

style: install
	$(BIN)/ruff check kiln tests bench

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_layers.py

unit: install
	$(BIN)/pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

e2e: install peers
	KILN_REQUIRE_PEERS=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 tests/e2e $(PYTEST_ARGS)

# --dist worksteal: xdist's default (load) hands each worker a first chunk of 1/8 of the suite in collection order,
# so one worker got chaos and nearly every e2e test (the first 284 of 2,273) while the other ran the unit tests and
# then sat idle; worksteal splits the suite in halves and lets an idle worker take half of the other's queue
test: install peers lint
	KILN_REQUIRE_PEERS=1 KILN_REQUIRE_COMPILED=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist worksteal \
	  --durations=15 tests $(PYTEST_ARGS)
	$(MAKE) --no-print-directory schema

# OME's OpenAPI file against a live Kiln (skipped, saying so, when ../shared/ref/ome.yml is absent)
schema: install
	$(BIN)/python scripts/schema_check.py --max-examples $(SCHEMA_EXAMPLES) --time-budget $(SCHEMA_SECONDS)

# every fuzz target with a long budget and fresh random examples; failures are kept in
# .hypothesis/fuzz and replayed first on the next run (tests/fuzz/README.md)
fuzz: install
	KILN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KILN_FUZZ_RANDOM=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 \
	  --hypothesis-show-statistics tests/fuzz $(PYTEST_ARGS)

# crash chaos, bigger than the CI run in tests/chaos (KILLS, COMMANDS, SEED to change it)
KILLS ?= 100
COMMANDS ?= 5000
chaos: install peers
	$(BIN)/python -m tests.chaos.runner --kills $(KILLS) --commands $(COMMANDS) $(if $(SEED),--seed $(SEED),)

# soak: 4 streams, LL-HLS viewers, a push, a recording, API traffic; RSS/fds/threads/API latency each INTERVAL s
MINUTES ?= 60
INTERVAL ?= 60
soak: install peers
	$(BIN)/python -m tests.chaos.soak --minutes $(MINUTES) --interval $(INTERVAL)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis node_modules tests/.media build kiln/_compiled.json
	find kiln -name '*.cpython-*.so' -delete
