# Parley: the two commands are `make dev` and `make test`. A fresh machine needs Python 3.11+,
# make and git; everything else is installed here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := static/vendor/htmx.min.js

.PHONY: dev test lint bench install assets chromium test-deps clean help

help:
	@echo "make dev     run Parley (embedded PostgreSQL + Valkey unless DATABASE_URL/REDIS_URL are set)"
	@echo "make test    run the whole test suite"
	@echo "make lint    ruff + mypy"
	@echo "make bench   run the benchmarks in bench/"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Parley needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

$(ASSETS): server/assets.py | $(STAMP)
	$(BIN)/python -m server fetch-assets

assets: $(ASSETS)

dev: install assets
	$(BIN)/python -m server dev

# The test suite's own packages beyond pyproject's: Debian's chromium for tests/browser, and the
# npm packages the tests drive (axe-core in the browser, the official socket.io-client), pinned by
# their package-lock.json files and installed with npm ci when a lock changes.
NODE_TEST_DIRS := tests/browser/node tests/realtime/node
NODE_TEST_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_TEST_DIRS))

%/node_modules/.installed: %/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for the tests (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix $* --no-audit --no-fund --loglevel=error
	@touch $@

# Socket.IO's own compliance suite (read-only in ../shared): copied to build/ and installed there.
# tests/realtime/test_compliance_suite.py patches only its URL constant, in a copy of its own.
SOCKETIO_SUITE_SRC ?= $(firstword $(wildcard ../shared/socketio-protocol-test-suite ../../shared/socketio-protocol-test-suite))
SOCKETIO_SUITE := build/socketio-protocol-test-suite

$(SOCKETIO_SUITE)/node_modules/.installed: $(SOCKETIO_SUITE_SRC)/package-lock.json
	@test -n "$(SOCKETIO_SUITE_SRC)" || { echo "shared/socketio-protocol-test-suite not found beside the repo (set SOCKETIO_SUITE_SRC)"; exit 1; }
	rm -rf $(SOCKETIO_SUITE) && mkdir -p build && cp -r $(SOCKETIO_SUITE_SRC) $(SOCKETIO_SUITE) && chmod -R u+w $(SOCKETIO_SUITE)
	npm ci --prefix $(SOCKETIO_SUITE) --no-audit --no-fund --loglevel=error
	@touch $@

test-deps: chromium $(NODE_TEST_STAMPS) $(SOCKETIO_SUITE)/node_modules/.installed

# Two pytest processes (pytest-xdist), a file at a time each: most tests wait on real processes
# and browsers, so two overlap well on two cores. PYTEST_ARGS=-n0 runs them in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

# The tests that cover the Redis roles the cluster changes (mailboxes and rate limits, the queue
# beside it, the outbox's sharded pub/sub, presence and locations, sessions, caches, project
# cleanup, the realtime gateway's sharded subscriptions, the websocket adapter between gateways),
# run again on a real three-primary Valkey cluster (docs/scaling.md).
# (The kill -9 fault tests, the slot migration and the many-nodes test on a cluster are in
# tests/topology/, in the first run: they start clusters of their own.)
CLUSTER_TESTS ?= tests/pipeline/test_drain.py tests/pipeline/test_outbox.py tests/pipeline/test_persistence.py \
	tests/pipeline/test_sending.py tests/pipeline/test_services.py tests/topology/test_topologies.py \
	tests/api/test_auth.py tests/api/test_projects_and_members.py tests/api/test_hydration.py \
	tests/realtime/test_events.py tests/realtime/test_cluster.py tests/realtime/test_agent_presence.py \
	tests/realtime/test_presence_storm.py tests/realtime/test_presence_heartbeat.py tests/realtime/test_socket_policy.py

test: install assets test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	PARLEY_TEST_REDIS=cluster $(BIN)/python -m pytest $(PYTEST_ARGS) $(CLUSTER_TESTS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server console tasks tests piccolo_conf.py

bench: install assets
	@command -v wrk >/dev/null 2>&1 || { echo "installing Debian's wrk (HTTP load client for bench/)"; \
		$$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq wrk; }
	$(BIN)/python -m bench

# Headless Chromium for the console's browser tests (Debian's package; root or sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		$$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) static/vendor .mypy_cache .ruff_cache .pytest_cache
