# Entry points for people and CI. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/pytest
HOST ?= 127.0.0.1
PORT ?= 8000
MODELS ?= models

.PHONY: help setup tools run train test lint test-python bench cluster-up cluster-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv with nepse-predictor and nepse-gitops installed

$(VENV)/.installed: requirements/dev.txt service/pyproject.toml gitops/pyproject.toml scripts/setup-venv.sh
	scripts/setup-venv.sh

tools: setup ## install the pinned tools into .tools/ (helm 3 and 4, kubectl, ct, kwok, ...)
	scripts/install-tools.sh

run: setup ## train the default model if none exists, then serve it on $(HOST):$(PORT)
	$(BIN)/nepse-predictor serve --models-root $(MODELS) --train-if-missing --host $(HOST) --port $(PORT)

train: setup ## train a new model version on the bundled synthetic sample into $(MODELS)/
	$(BIN)/nepse-predictor train --out $(MODELS)

test: setup ## run every test tier (installs what it needs first)
	$(MAKE) lint
	$(MAKE) test-python

lint: setup ## ruff, yamllint and hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-python: setup ## unit and integration tests of the service
	$(PYTEST) tests/service

bench: setup ## benchmarks; each result printed as a ratio to a baseline measured in the same run
	$(BIN)/python bench/run.py

cluster-up: tools ## start the local control plane; prints the kubeconfig path
	scripts/cluster-up.sh

cluster-down: ## stop the local control plane
	scripts/cluster-down.sh

clean: ## remove the virtual environment, tools and trained models
	rm -rf $(VENV) .tools $(MODELS)
