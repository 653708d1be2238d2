# Entry points for people and CI. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# Every tier runs with the pinned tools first on PATH (helm, kubectl, ct, kubeconform, ...).
WITH_TOOLS := scripts/with-tools.sh
PYTEST := $(WITH_TOOLS) $(BIN)/pytest
HOST ?= 127.0.0.1
PORT ?= 8000
MODELS ?= models
# A tier run on its own installs the tools first (seconds when present); `make test` installs
# them once and runs its tiers with TIERS_NEED=setup.
TIERS_NEED ?= tools

.PHONY: help setup tools run train test lint test-unit test-chart test-router test-container \
	test-e2e test-traffic test-argocd test-real-node bench image cluster-up cluster-down real-cluster-up \
	real-cluster-down argocd-up argocd-down clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv with nepse-predictor and nepse-gitops installed

$(VENV)/.installed: requirements/dev.txt service/pyproject.toml service/setup.py \
		service/src/nepse_predictor/_trees.c gitops/pyproject.toml scripts/setup-venv.sh
	scripts/setup-venv.sh

tools: setup ## install the pinned tools into .tools/ and the Debian packages the tests start
	scripts/install-tools.sh

run: setup ## train the default model if none exists, then serve it on $(HOST):$(PORT)
	$(BIN)/nepse-predictor serve --models-root $(MODELS) --train-if-missing --host $(HOST) --port $(PORT)

train: setup ## train a new model version on the bundled synthetic sample into $(MODELS)/
	$(BIN)/nepse-predictor train --out $(MODELS)

test: tools ## run every test tier (installs what it needs first)
	@started=$$SECONDS; export TIERS_NEED=setup; \
	for tier in lint test-unit test-chart test-container; do \
	  echo "==> make $$tier"; $(MAKE) --no-print-directory $$tier; \
	done; \
	MAKE="$(MAKE)" scripts/side-by-side.sh test-e2e test-router; \
	echo "==> make test-real-node"; $(MAKE) --no-print-directory test-real-node; \
	echo "==> all tiers passed in $$((SECONDS - started)) s"

lint: $(TIERS_NEED) ## ruff, yamllint, hadolint, actionlint, shellcheck; kube-score and checkov on the chart
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/yamllint --strict .
	$(BIN)/hadolint Dockerfile
	$(WITH_TOOLS) actionlint .github/workflows/*.yml
	shellcheck scripts/*.sh scripts/lib/*.sh scripts/cluster/*.sh scripts/container/*.sh scripts/real-cluster/*.sh scripts/argocd/*.sh .ci/run
	$(WITH_TOOLS) $(BIN)/python scripts/chart_policy.py

test-unit: $(TIERS_NEED) ## service, gitops and tooling tests (real uvicorn, redis-server, git, helm)
	$(PYTEST) --numprocesses auto --maxprocesses 4 tests/service tests/gitops tests/tooling

test-chart: $(TIERS_NEED) ## helm-unittest under Helm 3 and 4, ct lint, kubeconform, chart README check
	$(PYTEST) --numprocesses auto --maxprocesses 4 tests/chart

test-router: $(TIERS_NEED) ## the chart's nginx router in front of real services; releases driven by `advance` with a real Prometheus
	$(PYTEST) tests/router

test-container: $(TIERS_NEED) ## build and run the image with podman; compose through podman's socket
	$(PYTEST) tests/container

test-e2e: $(TIERS_NEED) ## helm install/upgrade/rollback against a local control plane
	$(PYTEST) tests/e2e

test-traffic: $(TIERS_NEED) ## real pods on a real node: every release pattern under a request loop
	$(PYTEST) tests/traffic

test-argocd: $(TIERS_NEED) ## a real Argo CD syncing the environments onto the real node: every release by git
	$(PYTEST) tests/argocd

test-real-node: $(TIERS_NEED) ## test-traffic and test-argocd in one session, on one real node (what make test runs)
	$(PYTEST) tests/traffic tests/argocd

bench: setup ## benchmarks; each result printed as a ratio to a baseline measured in the same run
	$(BIN)/python bench/run.py

image: setup ## build the service image with podman (localhost/nepse-predictor:dev)
	scripts/container/build-image.sh

cluster-up: tools ## start the local control plane; prints the kubeconfig path
	@scripts/cluster-up.sh

cluster-down: ## stop the local control plane
	scripts/cluster-down.sh

real-cluster-up: tools ## start a cluster with one real node (runs pods); prints the kubeconfig path
	@scripts/real-cluster-up.sh

real-cluster-down: ## stop the real cluster and remove everything it made
	scripts/real-cluster-down.sh

argocd-up: tools ## start Argo CD on the local cluster, syncing from a git daemon; prints how to use it
	@scripts/argocd-up.sh

argocd-down: ## stop Argo CD (and the kwok cluster when argocd-up started it)
	scripts/argocd-down.sh

clean: ## remove the virtual environment, tools and trained models
	rm -rf $(VENV) .tools $(MODELS)
