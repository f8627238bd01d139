# ZOO Calrissian service template: `make help` lists the targets.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILD := build
APP ?=
WORKFLOW ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo test faults soak bench calrissian-venv lint format service clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --group dev
	@touch $@

setup: $(STAMP) ## Create .venv with the pinned dependencies (bake, run services, test)

demo: $(STAMP) ## Bake the example package and execute it with the embedded cwltool engine
	@$(MAKE) --no-print-directory service APP=examples/band-stats.cwl WORKFLOW=band-stats
	cd $(BUILD) && $(abspath $(BIN))/python -m band-stats.service $(abspath examples/execute.json) --workdir jobs

test: $(STAMP) ## Run the tests (offline)
	$(BIN)/python -m pytest

faults: $(STAMP) ## Run the fault matrix on the offline harness and write it into the README
	$(BIN)/python -m pytest -q -m faults
	$(BIN)/python -c 'import pathlib, re; readme = pathlib.Path("README.md"); table = pathlib.Path("$(BUILD)/fault-matrix.md").read_text(); readme.write_text(re.sub(r"(?s)(<!-- fault-matrix -->\n).*?(<!-- /fault-matrix -->)", lambda m: m[1] + table + m[2], readme.read_text()))'

soak: $(STAMP) ## Twenty concurrent executions on the offline Kubernetes harness
	$(BIN)/python -m pytest -q -m soak

bench: $(STAMP) ## Measure against the baselines (medians; RUNS=5 by default)
	$(BIN)/python benchmarks/run.py --runs $(or $(RUNS),5)

calrissian-venv: $(STAMP) ## Create .venv-calrissian (calrissian 0.18.1 from PyPI) for the harness
	$(BIN)/python tests/harness/calrissian_venv.py

lint: $(STAMP) ## Check style with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

service: $(STAMP) ## Bake a service into build/: make service APP=path/to/app.cwl WORKFLOW=id
	@test -n "$(APP)" -a -n "$(WORKFLOW)" || { echo "usage: make service APP=path/to/app.cwl WORKFLOW=workflow-id"; exit 2; }
	$(BIN)/cookiecutter --no-input --overwrite-if-exists --output-dir $(BUILD) . \
		workflow_id="$(WORKFLOW)" application_package="$(abspath $(APP))"
	@echo "Service written to $(BUILD)/$(WORKFLOW)"

clean: ## Remove build/ and caches (keeps .venv)
	rm -rf $(BUILD) .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
