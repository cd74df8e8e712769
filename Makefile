# Developer entry points. The dev stack itself lives in starter/devstack/ (python -m starter.devstack):
#   make demo          everything on this machine, sources served by the local replay server
#   make up / down     the same against the real sources / stop it all
#   make logs worker   (or: make logs SERVICE=worker LINES=200 FOLLOW=1)

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVSTACK := $(PY) -m starter.devstack
TARGETS := help venv up demo down status restart logs lint typecheck test test-quick smoke bench chaos clean

.DEFAULT_GOAL := help
.PHONY: $(TARGETS)

help:
	@echo "make venv | up | demo | down | status | restart | logs [SERVICE] | lint | typecheck | test | test-quick | smoke | bench | chaos | clean"

venv: $(STAMP)

# Reinstall only when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m advisories.render.vendor
	touch $@

up: venv
	$(DEVSTACK) up

demo: venv
	$(DEVSTACK) up --demo

down: venv
	$(DEVSTACK) down

status: venv
	$(DEVSTACK) status

restart: venv
	$(DEVSTACK) restart

# `make logs worker`: the words after `logs` name the service (see the no-op rule below).
LOGS_ARGS := $(if $(filter logs,$(MAKECMDGOALS)),$(filter-out $(TARGETS),$(MAKECMDGOALS)))
SERVICE ?= $(firstword $(LOGS_ARGS))
LINES ?= 50

logs: venv
	$(DEVSTACK) logs $(SERVICE) --lines $(LINES) $(if $(FOLLOW),--follow)

ifneq ($(LOGS_ARGS),)
.PHONY: $(LOGS_ARGS)
$(LOGS_ARGS):
	@:
endif

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy .

# Every test, the short bench and chaos runs included (they keep those scripts from rotting).
test: lint typecheck
	$(PY) -m pytest -q

# The same without the short bench and chaos runs (about 2 minutes less).
test-quick: lint typecheck
	$(PY) -m pytest -q -m "not smoke"

# Only the short bench and chaos runs (separate processes, about 2 minutes).
smoke: venv
	$(PY) -m pytest -q -m smoke

# Benchmarks and the chaos run print tables and write JSON under .state/ (full size; takes minutes).
bench: venv
	$(PY) -m bench --out .state/bench.json

chaos: venv
	$(PY) -m chaos --out .state/chaos.json

clean: venv
	$(DEVSTACK) clean
