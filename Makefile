# recsys: one way to run everything. Every target installs first when .venv is missing or stale.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECSYS := $(BIN)/recsys
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install test test-fast lint format demo demo-down serve clean bench

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

test: install ## Run the whole test suite (starts its own local stack on free ports)
	$(BIN)/python -m pytest

lint: install ## ruff, terraform fmt -check and checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
		else echo "terraform not installed: skipping terraform fmt"; fi

format: install ## Format Python and Terraform
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	@if command -v terraform >/dev/null; then terraform fmt -recursive terraform; fi

demo: install ## The main job on the local stack: bring it up and provision it, then show its status
	$(RECSYS) local up
	$(RECSYS) local status

demo-down: install ## Stop the local stack that `make demo` started
	$(RECSYS) local down

clean: ## Remove build outputs and local state (not .venv)
	rm -rf build .recsys .pytest_cache .ruff_cache catboost_info
