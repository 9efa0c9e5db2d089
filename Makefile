# Navarch. `make up` starts a local cluster; `make test` runs the whole suite.
# Both install what is missing first (apt packages as root, then .venv).
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
RUN_DIR ?= $(CURDIR)/.run
export VENV

.PHONY: deps proto up down status test test-fast lint bench bench-api bench-scheduler \
	bench-controllers bench-podstartup bench-proxy clean

deps:
	@./deploy/bootstrap.sh

# Regenerate navarch/v1 (protobuf + gRPC modules, stubs, descriptors) from proto/.
proto: deps
	$(PY) proto/generate.py

up: deps
	$(PY) -m navarch up --run-dir $(RUN_DIR) --example examples/guestbook
	@echo; echo "Images in the local registry (navarch images):"; $(PY) -m navarch images --run-dir $(RUN_DIR)

down:
	@if [[ -x $(PY) ]]; then $(PY) -m navarch down --run-dir $(RUN_DIR); fi

status: deps
	$(PY) -m navarch status --run-dir $(RUN_DIR)

test: deps lint
	$(PY) -m pytest -q -p no:cacheprovider tests

# Unit tests only: no clusters, no processes.
test-fast: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lint: deps
	$(PY) proto/generate.py --check
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy navarch raftstore services deploy node_agent netproxy

bench: deps
	$(PY) -m bench.store

bench-api: deps
	$(PY) -m bench.api

bench-scheduler: deps
	$(PY) -m bench.scheduler

bench-controllers: deps
	$(PY) -m bench.controllers

bench-podstartup: deps
	$(PY) -m bench.podstartup

bench-proxy: deps
	$(PY) -m bench.proxy

clean: down
	rm -rf $(RUN_DIR) build *.egg-info
