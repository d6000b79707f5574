# rightsdesk: every target installs what it needs (in .venv/ and .tools/), so a clean clone works.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
CFN_LINT := $(SAM_VENV)/bin/cfn-lint
PYTEST_ARGS ?=

.PHONY: help install requirements tools run test test-style test-layers typecheck test-unit test-integration test-template test-e2e lint build bench deploy translations clean
.PHONY: check security fuzz load format openapi

help:
	@echo "make run     start the local stack (moto on :4566, gateway on :3000, demo controller 'demo')"
	@echo "make test    unit, integration, template checks, sam build and the browser test"
	@echo "make format ruff: fix the lint findings it can and format the tree"
	@echo "make lint    cfn-lint and sam validate --lint"
	@echo "make openapi write docs/openapi/ (both OpenAPI documents, the webhook events' snapshot) from the code"
	@echo "make build   sam build (BuildMethod: makefile, no Docker)"
	@echo "make requirements  regenerate layers/core/requirements.txt from constraints.txt"
	@echo "make bench   benchmarks; refreshes docs/benchmarks.md"
	@echo "make check   make test, then checkov on the template and a longer fuzz run (what CI runs)"
	@echo "make load    2,000 submissions and verifications from 20 clients; refreshes its part of docs/benchmarks.md"
	@echo "make deploy  sam deploy --config-env $${ENV:-dev}"

$(PY):
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every package exactly (the one place versions are written); pyproject.toml
# only says what the code supports. Changing either reinstalls.
$(VENV)/.installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -c constraints.txt -e '.[dev]' 2> >(grep -v "is ignored: it is neither" >&2)
	touch $@

install: $(VENV)/.installed

# The CoreLayer's pins, generated from constraints.txt; tests/template/test_dependencies.py fails
# while the committed file is stale.
requirements: install
	$(PY) scripts/layer_requirements.py

# aws-sam-cli pins its own boto3 (and brings cfn-lint): it lives in a tool venv of its own.
# Pinned so that a new linter rule cannot break `make lint` overnight; the stamp carries the
# versions, so changing a pin reinstalls.
SAM_TOOLS := aws-sam-cli==1.170.0 cfn-lint==1.58.0
space := $() $()
SAM_STAMP := $(SAM_VENV)/.installed-$(subst ==,-,$(subst $(space),_,$(SAM_TOOLS)))

$(SAM_STAMP):
	rm -f $(SAM_VENV)/.installed-*
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip --disable-pip-version-check -q install $(SAM_TOOLS) 2> >(grep -v "is ignored: it is neither" >&2)
	touch $@

tools: $(SAM_STAMP)

# Every local caller is 127.0.0.1: the local run raises the abuse limits (local/loopback.py) through
# parameter overrides. `make run LOCAL_LIMITS=` runs with the production defaults.
LOCAL_LIMITS ?= $$($(PY) -m local.loopback)
run: install
	$(PY) -m local --background-priority idle $(if $(LOCAL_LIMITS),--parameter-overrides $(LOCAL_LIMITS)) $(ARGS)

test: test-style test-layers typecheck test-unit test-integration test-template test-e2e

# ruff: the lint rules and the formatting of pyproject.toml [tool.ruff]; `make format` fixes both.
test-style: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The core's layers contract and what it forbids (pyproject.toml [tool.importlinter]); seconds.
test-layers: install
	$(VENV)/bin/lint-imports

# mypy, strict on rightsdesk.kernel (pyproject.toml [tool.mypy] says what is checked and how).
typecheck: install
	$(PY) -m mypy

# Unit tests own their data (their own moto, site, controller and addresses): safe on both cores.
test-unit: install
	$(PY) -m pytest tests/unit -q -n auto $(PYTEST_ARGS)

# Every xdist worker runs a local stack of its own (free ports) and its tests one at a time; a test
# module stays on one worker (--dist loadfile), with the stacks its module fixtures start.
INTEGRATION_WORKERS ?= auto
test-integration: install
	$(PY) -m pytest tests/integration -q -n $(INTEGRATION_WORKERS) --dist loadfile $(PYTEST_ARGS)

# lint and build first: the tests also read what sam build made (.aws-sam/build).
test-template: install tools lint build
	$(PY) -m pytest tests/template -q $(PYTEST_ARGS)

test-e2e: install
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest tests/e2e -q $(PYTEST_ARGS)

lint: tools
	$(CFN_LINT) template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml --region eu-central-1

# Every build is BuildMethod: makefile (no Docker, no local python3.13). The tool venv goes first
# on PATH so the layer's Makefile finds a python3 with pip whatever this machine's python3 is.
build: tools
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build --template template.yaml --region eu-central-1

bench: install build
	$(PY) -m bench

deploy: tools build
	SAM_CLI_TELEMETRY=0 $(SAM) deploy --config-env $${ENV:-dev}

# The published contracts from the code (scripts/openapi_documents.py): refused if a webhook event
# changed in a way its compatibility rule does not allow. tests/unit/test_api_contracts.py fails
# while a committed file differs from what this writes.
openapi: install
	$(PY) -m scripts.openapi_documents

# Every domain (messages, notices, operator) compiles to the .mo files the layer ships.
translations: install
	for domain in $$(ls layers/core/rightsdesk/render/locales/en/LC_MESSAGES/ | sed -n 's/\.po$$//p'); do \
	  $(VENV)/bin/pybabel compile -d layers/core/rightsdesk/render/locales -D $$domain || exit 1; done
	$(PY) -m babel.messages.frontend compile -d layers/core/rightsdesk/render/locales -D notices

clean:
	rm -rf .aws-sam .local

# ---------------------------------------------------------------- proving it holds
# checkov pins its own dependencies: a tool venv of its own, as the SAM CLI has. It runs offline:
# no policy download, no platform mapping, no update check.
CHECKOV_VENV := .tools/checkov
CHECKOV_TOOL := checkov==3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(subst ==,-,$(CHECKOV_TOOL))
CHECKOV_ENV := BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true

$(CHECKOV_STAMP):
	rm -f $(CHECKOV_VENV)/.installed-*
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip --disable-pip-version-check -q install $(CHECKOV_TOOL) 2> >(grep -v "is ignored: it is neither" >&2)
	touch $@

# Zero failed checks; each skip is inline in template.yaml (Metadata.checkov) with its reason.
# scripts/checkov_template.py explains the copy checkov reads.
security: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python scripts/checkov_template.py
	$(CHECKOV_ENV) $(CHECKOV_VENV)/bin/checkov -f .aws-sam/checkov/template.json --framework cloudformation \
		--skip-download --compact --quiet

# The fuzz test of `make test` with 100 examples per operation instead of 12.
fuzz: install
	RIGHTSDESK_FUZZ_EXAMPLES=$${EXAMPLES:-100} $(PY) -m pytest tests/integration/test_fuzz_api.py -q $(PYTEST_ARGS)

# SHAPE=peer: the load the best-known peer was measured with (bench/load.py run_peer); CLIENTS sets its many clients.
load: install
	mkdir -p .local
	$(PY) -m bench.load --shape $${SHAPE:-even} --requests $${REQUESTS:-2000} --concurrency $${CLIENTS:-20}

check: test security fuzz
