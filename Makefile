# distill-guard — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_SYS  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
DG      := $(VENV)/bin/distill-guard
KAFKA   := PYTHON=$(abspath $(PY)) deploy/kafka/kafka.sh
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install run demo test test-stress test-unit test-integration kafka-up kafka-down bench lint eval check-rules clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install the package with its dev tools

kafka-up: $(STAMP) ## start the single-node KRaft broker on 127.0.0.1:9092 (fetches the jars once)
	@$(KAFKA) up

kafka-down: ## stop the broker started by kafka-up
	@$(KAFKA) down

run: $(STAMP) ## the demo: Kafka + worker + simulated traffic, live decisions; Ctrl-C stops everything
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(DG) demo

test: $(STAMP) ## unit + integration tests against a real broker this target starts and stops
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(PY) -m pytest -m "not stress" $(PYTEST_ARGS)

test-stress: $(STAMP) ## the long random multi-SIGKILL run (10 kills over 12k events)
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(PY) -m pytest -m stress $(PYTEST_ARGS)

test-unit: $(STAMP) ## tests that need no broker
	$(PY) -m pytest -m "not kafka" $(PYTEST_ARGS)

bench: $(STAMP) ## throughput and state figures, each as a ratio to a baseline measured in the same run
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(PY) -m app.bench

eval: $(STAMP) ## simulate the default day, replay it, print the evaluation table
	$(DG) simulate --scenario default --seed 7 --out out/default
	$(DG) replay out/default/events.jsonl --out out/default/replay
	$(DG) evaluate --events out/default/events.jsonl --labels out/default/labels.json \
	  --decisions out/default/replay/decisions.jsonl --report out/default/report.html

check-rules: $(STAMP) ## validate the rules file ($$DG_RULES or the packaged default)
	$(DG) check-rules

lint: $(STAMP) ## ruff over the code and tests
	$(VENV)/bin/ruff check app tests

clean: ## remove the venv, broker data and outputs
	-@$(KAFKA) down
	rm -rf $(VENV) deploy/kafka/.data out .bench .data
