# hipaa-mlops: `make demo` and `make test` do all the set-up on a fresh machine.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-installs only when the pinned requirements or the project metadata change.
STAMP := $(VENV)/.installed

.PHONY: help setup checkov moto hardening docs seaweedfs prometheus engine engine-stop compose-cli images conformance-pack demo test test-unit \
	lint format bench up down status clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

# The lock pins every transitive dependency, so it is installed as is (--no-deps): NannyML
# asks for FLAML[automl] and so for `xgboost`, whose Linux wheel pulls NVIDIA's
# proprietary NCCL; the lock has `xgboost-cpu` instead (the same module, Apache-2.0).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(STAMP) ## create the virtual environment with the pinned requirements

# checkov in a virtual environment of its own: its pins would clash with the project's.
CHECKOV_STAMP := .venv-checkov/.installed
$(CHECKOV_STAMP): requirements-checkov.lock
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-checkov.lock
	touch $@

checkov: $(CHECKOV_STAMP) ## install checkov (pinned, in .venv-checkov) for the Terraform policy tests

# moto's server likewise: it stands in for AWS's S3 and KMS APIs in the tests of the lake's
# S3 mode (HIPAA_MLOPS_LAKE=s3), where no AWS account can be reached.
MOTO_STAMP := .venv-moto/.installed
$(MOTO_STAMP): requirements-moto.lock
	test -x .venv-moto/bin/python || $(PYTHON) -m venv .venv-moto
	.venv-moto/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-moto.lock
	touch $@

moto: $(MOTO_STAMP) ## install moto's server (pinned, in .venv-moto) for the tests of the lake's S3 mode

# schemathesis likewise, for make hardening.
HARDENING_STAMP := .venv-hardening/.installed
$(HARDENING_STAMP): requirements-hardening.lock
	test -x .venv-hardening/bin/python || $(PYTHON) -m venv .venv-hardening
	.venv-hardening/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-hardening.lock
	touch $@

# MkDocs likewise, for the documentation site under docs/ (mkdocs.yml). The site lands in
# the data directory, so it is built with the stack's umask: `hipaa-mlops evidence` fails
# on any file there open to group or others.
DOCS_STAMP := .venv-docs/.installed
$(DOCS_STAMP): requirements-docs.lock
	test -x .venv-docs/bin/python || $(PYTHON) -m venv .venv-docs
	.venv-docs/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-docs.lock
	touch $@

docs: $(DOCS_STAMP) ## build the documentation site strictly (broken links and pages fail)
	umask 077 && .venv-docs/bin/mkdocs build --strict --site-dir .hipaa-mlops/site

seaweedfs: setup ## build SeaweedFS `weed` from its Go module (cached; rebuilt when the pin changes)
	$(BIN)/python -m services.seaweedfs.build

# Debian's package, installed only when `prometheus` or `promtool` is missing from PATH. The
# stack starts its own server with its own config; the package's /etc/prometheus is unused.
prometheus: ## install Prometheus and promtool from Debian's package when they are missing
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
	  command -v apt-get >/dev/null || { echo "prometheus and promtool are not on PATH and" \
	    "there is no apt-get: install Prometheus 2.x (both binaries) by hand" >&2; exit 1; }; \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends prometheus; \
	fi

# The engine the user has (DOCKER_HOST or the default socket); where none answers, as root
# on Debian, Debian's docker.io and a dockerd of our own on the default socket.
engine: setup ## make sure a Docker engine answers (starts our own dockerd where none does)
	$(BIN)/python -m services.containers.engine up

engine-stop: setup ## stop the dockerd that `make engine` started (no other)
	$(BIN)/python -m services.containers.engine down

compose-cli: engine ## build and install the Compose v2 CLI plugin unless `docker compose` works
	$(BIN)/python -m services.containers.cli_plugin

# No network inside any build: the base comes from debootstrap, Python packages from a
# wheelhouse made on the host. Images whose tag exists are not rebuilt.
images: setup seaweedfs engine ## build the stack's images (base, app, seaweedfs, postgres, prometheus)
	$(BIN)/python -m services.containers.images build

# AWS's "Operational Best Practices for HIPAA Security" conformance pack, at the commit and
# SHA-256 that terraform/modules/compliance/conformance_pack.json pins (never committed).
PACK_PIN := terraform/modules/compliance/conformance_pack.json
PACK := terraform/.conformance-pack/Operational-Best-Practices-for-HIPAA-Security.yaml
conformance-pack: $(PACK) ## fetch AWS's HIPAA Security conformance pack at its pinned commit, checked by SHA-256
$(PACK): $(PACK_PIN)
	mkdir -p $(@D)
	set -- $$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1])); print("https://raw.githubusercontent.com/" + "/".join((p["repository"], p["commit"], p["path"])), p["sha256"])' $(PACK_PIN)) && \
	  curl -fsSL --proto =https --tlsv1.2 -o $@.partial "$$1" && \
	  echo "$$2  $@.partial" | sha256sum -c --quiet
	mv $@.partial $@

demo: setup ## run the lifecycle end to end on the sandbox stack (KEEP=1 leaves it running)
	$(BIN)/hipaa-mlops demo

# The JUnit file is where `hipaa-mlops evidence` reads the security tests' results.
test: setup seaweedfs prometheus checkov moto docs ## run every test; integration tests start their own servers
	$(BIN)/pytest --junitxml=.hipaa-mlops/test-results.xml

test-unit: setup prometheus checkov ## run the tests that need no server
	$(BIN)/pytest tests/unit

lint: setup ## ruff, format check, strict mypy and the layers of the import graph
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: setup ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

hardening: setup seaweedfs prometheus $(HARDENING_STAMP) ## attack and load the whole stack within bounds: TLS, fuzz, canaries, load (fails on a regression)
	$(BIN)/python -m bench.hardening

bench: setup seaweedfs ## run the benchmarks (bench.serving needs wrk: apt-get install wrk); each prints ratios against its peers
	$(BIN)/python -m bench.envelope
	$(BIN)/python -m bench.objectstore
	$(BIN)/python -m bench.data
	$(BIN)/python -m bench.contract
	$(BIN)/python -m bench.train
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.monitoring
	$(BIN)/python -m bench.projects
	$(BIN)/python -m bench.failover

# `make up` runs the compose stack in its own data directory (`hipaa-mlops` commands reach
# it with the same three settings); NATIVE=1 starts the same servers as native processes.
COMPOSE := HIPAA_MLOPS_RUNTIME=compose HIPAA_MLOPS_PROFILE=stack HIPAA_MLOPS_DATA_DIR=.hipaa-mlops-compose
STACK := $(if $(NATIVE),,$(COMPOSE))

up: setup $(if $(NATIVE),seaweedfs prometheus,images compose-cli) ## start the compose stack (NATIVE=1: native processes, PROFILE=sandbox|stack)
	$(STACK) $(BIN)/hipaa-mlops stack up $(if $(PROFILE),--profile $(PROFILE))

down: setup ## stop the stack, keeping its data and the compose volumes (NATIVE=1: the native one)
	$(STACK) $(BIN)/hipaa-mlops stack down

status: setup ## show each server's health (NATIVE=1: the native stack's)
	$(STACK) $(BIN)/hipaa-mlops stack status

clean: ## stop both stacks, delete the compose volumes, the data directories and the venv
	-test -x $(BIN)/hipaa-mlops && $(BIN)/hipaa-mlops stack down
	-test -x $(BIN)/hipaa-mlops && docker compose version >/dev/null 2>&1 && \
	  $(COMPOSE) $(BIN)/hipaa-mlops stack down --volumes
	rm -rf .hipaa-mlops .hipaa-mlops-compose $(VENV) .venv-checkov .venv-moto .venv-hardening .venv-docs
