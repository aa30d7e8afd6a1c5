# Kiln: `make run` starts the server with the embedded default configuration;
# `make test` installs what the tests need (Debian peers included) and runs everything.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kiln-installed
DATA   ?= data
PYTEST_ARGS ?=

.PHONY: run test install peers lint style typecheck layers unit e2e bench clean chaos soak

$(BIN)/python:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "installing python3-venv (needed to create $(VENV))"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
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

test: install peers lint
	KILN_REQUIRE_PEERS=1 $(BIN)/pytest -q -p no:cacheprovider -n 2 --durations=15 tests $(PYTEST_ARGS)

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
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis node_modules tests/.media
