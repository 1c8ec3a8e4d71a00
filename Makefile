# recsys: one way to run everything. Every target installs first when .venv is missing or stale.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECSYS := $(BIN)/recsys
PORT ?= 8080
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install tools test lint format demo demo-down package bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install recsys with the train and dev extras (fast when done)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "recsys needs Python 3.11+"' \
		|| { echo "Python 3.11+ is needed (found $(PYTHON))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	@touch $(STAMP)

tools: install ## Install checkov (.tools/checkov) and cache the AWS provider schema (.tools/)
	$(BIN)/python -m recsys.infra.tools install

test: install ## Run the whole test suite (starts its own local stack on free ports)
	$(BIN)/python -m pytest

lint: install ## ruff, terraform fmt -check, checkov and the AWS provider schema check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
		else echo "terraform not installed: skipping terraform fmt"; fi
	$(BIN)/python -m recsys.infra.tools checkov
	$(BIN)/python -m recsys.infra.tools schema

format: install ## Format Python and Terraform
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	@if command -v terraform >/dev/null; then terraform fmt -recursive terraform; fi

demo: install ## The main job on the local stack: starter data, train and gate, deploy, serve the page, close the loop
	$(RECSYS) up --env local --port $(PORT)
	$(RECSYS) model list --env local
	@echo "The loop: post events, the events worker applies them and delivers them to S3, retrain on them"
	$(BIN)/python -m recsys.local.demo_loop --url http://127.0.0.1:$(PORT) --user 12345 > /dev/null
	$(RECSYS) features get --env local --user 12345 --json
	$(RECSYS) feedback merge --env local --date today
	$(RECSYS) pipeline run --env local --source events
	$(RECSYS) feedback report --env local
	@echo
	@echo "Open http://127.0.0.1:$(PORT)/ to try it (API docs: /docs, OpenAPI: /openapi.json). Or:"
	@echo "  curl -s 'http://127.0.0.1:$(PORT)/recommendations/12345?k=5'"
	@echo "Check it: $(RECSYS) validate --env local. Stop everything with: make demo-down"

demo-down: install ## Stop the local stack and the API that `make demo` started
	$(RECSYS) local down

package: install ## Build the Lambda zips and the training image context under build/
	$(RECSYS) package

bench: install ## Run the benchmarks (writes bench/results/*.md)
	$(BIN)/python bench/pipeline_bench.py --sizes seed --repeat 3
	$(BIN)/python bench/serving_bench.py --sizes 500,100000
	$(BIN)/python bench/reliability_bench.py load --duration 20 --repeat 3

clean: ## Remove build outputs and local state (not .venv)
	rm -rf build .recsys .pytest_cache .ruff_cache catboost_info
