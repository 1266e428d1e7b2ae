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

# Tools the tests run beyond the venv and the Kafka jars (`make tools`): Go-built validators pinned here and
# in tests/deploy/tools/go.mod, installed into TOOLS_BIN, which the test targets put first on PATH; Debian's
# chromium from apt-get; kubectl from the machine.
TOOLS_DIR := .tools
TOOLS_BIN := $(CURDIR)/$(TOOLS_DIR)/bin
PROMTOOL_VERSION := v0.316.0
COMPOSE_MOD := tests/deploy/tools
# `docker-compose version` prints the version set through -ldflags: the one the module pins
COMPOSE_VERSION := $(shell awk '$$1 == "require" && $$2 == "github.com/docker/compose/v5" {print $$3}' $(COMPOSE_MOD)/go.mod)

.PHONY: help install tools system-tools run test test-stress test-unit kafka-up kafka-down bench lint eval check-rules clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install the package with its dev tools

tools: system-tools $(TOOLS_BIN)/promtool $(TOOLS_BIN)/docker-compose ## what the tests run beyond the venv: promtool, docker-compose (.tools/bin), chromium (apt)

# first, so that a machine that cannot have them says so before the Go builds
system-tools:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [[ $$(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then \
	    echo "tools: installing chromium with apt-get (the HTML report test renders in it)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null && \
	    command -v chromium >/dev/null || { echo "tools: apt-get did not install chromium on PATH" >&2; exit 1; }; \
	  else \
	    echo "tools: chromium is missing (tests/evaluate renders the HTML report in it) and this make cannot" \
	         "install it (it needs root and apt-get). Install it, e.g. \`sudo apt-get install chromium\`" \
	         "on Debian or your distribution's chromium package, then run make again." >&2; \
	    exit 1; \
	  fi; }
	@command -v kubectl >/dev/null 2>&1 || { \
	  echo "tools: kubectl is missing (tests/deploy renders deploy/k8s with \`kubectl kustomize\`). Install it" \
	       "(https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/), then run make again." >&2; exit 1; }

# the binaries are rebuilt when their pinned version changes
FORCE:
$(TOOLS_DIR)/promtool.version: FORCE
	@mkdir -p $(@D); echo $(PROMTOOL_VERSION) | cmp -s - $@ || echo $(PROMTOOL_VERSION) > $@

NEED_GO = @command -v go >/dev/null 2>&1 || { echo "tools: Go is missing; it builds $(@F) for tests/deploy." \
  "Install Go (https://go.dev/dl/, the version in $(COMPOSE_MOD)/go.mod or newer), then run make again." >&2; exit 1; }

$(TOOLS_BIN)/promtool: $(TOOLS_DIR)/promtool.version
	$(NEED_GO)
	GOBIN=$(TOOLS_BIN) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

# built from a module of our own: Compose's go.mod has an exclude directive, which `go install pkg@v` refuses
$(TOOLS_BIN)/docker-compose: $(COMPOSE_MOD)/go.mod $(COMPOSE_MOD)/go.sum
	$(NEED_GO)
	@mkdir -p $(@D)
	go build -C $(COMPOSE_MOD) -ldflags "-X github.com/docker/compose/v5/internal.Version=$(COMPOSE_VERSION)" \
	  -o $@ github.com/docker/compose/v5/cmd

kafka-up: $(STAMP) ## start the single-node KRaft broker on 127.0.0.1:9092 (fetches the jars once)
	@$(KAFKA) up

kafka-down: ## stop the broker started by kafka-up
	@$(KAFKA) down

run: $(STAMP) ## the demo: Kafka + worker + enforcer + simulated traffic, live decisions and the enforcer's answers; Ctrl-C stops everything
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(DG) demo

# The test targets run the tools `make tools` installed, before any others of the same name. pytest's exit
# status is the recipe's (the EXIT trap keeps it): 5, "no tests ran", fails the target like a failed test.
test test-stress test-unit: export PATH := $(TOOLS_BIN):$(PATH)

test: $(STAMP) tools ## unit + integration tests against a real broker this target starts and stops
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(PY) -m pytest -m "not stress" $(PYTEST_ARGS)

test-stress: $(STAMP) ## the long random multi-SIGKILL run (10 kills over 12k events)
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(PY) -m pytest -m stress $(PYTEST_ARGS)

test-unit: $(STAMP) tools ## tests that need no broker
	$(PY) -m pytest -m "not kafka" $(PYTEST_ARGS)

bench: $(STAMP) ## throughput, latency and state figures beside same-run baselines; writes docs/benchmarks.md
	@$(KAFKA) up
	@trap '$(KAFKA) down' EXIT; $(PY) -m app.bench --markdown docs/benchmarks.md

eval: $(STAMP) ## simulate the default day, replay it, print the evaluation table
	$(DG) simulate --scenario default --seed 7 --out out/default
	$(DG) replay out/default/events.jsonl --out out/default/replay
	$(DG) evaluate --events out/default/events.jsonl --labels out/default/labels.json \
	  --decisions out/default/replay/decisions.jsonl --report out/default/report.html

check-rules: $(STAMP) ## validate the rules file ($$DG_RULES or the packaged default)
	$(DG) check-rules

lint: $(STAMP) ## ruff over the code and tests
	$(VENV)/bin/ruff check app tests

clean: ## remove the venv, the tools in .tools, broker data and outputs
	-@$(KAFKA) down
	rm -rf $(VENV) $(TOOLS_DIR) deploy/kafka/.data out .bench .data
