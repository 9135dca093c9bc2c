# salesops-pipeline: `make run` runs the nightly job once on the demo data; `make test` runs the tests.
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.synced

export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

PROFILE ?= S
SEED ?= 42

.PHONY: setup run test ui lint demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml uv.lock
	@test -x $(UV) || ($(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet "uv==$(UV_VERSION)")
	@$(UV) sync --frozen --quiet
	@touch $(STAMP)

run: setup
	@$(BIN)/python -m orchestration run

demo: setup
	@$(BIN)/python -m orchestration demo

test: setup
	@$(BIN)/python -m pytest

# A benchmark, not a test: full, 1%-change and no-change runs plus the floor (docs/performance.md).
bench: setup
	@$(BIN)/python -m benchmarks.run --profile $(PROFILE) --seed $(SEED)

ui: setup
	@mkdir -p $(DAGSTER_HOME)
	@$(BIN)/dagster dev -w workspace.yaml

lint: setup
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf data dbt_project/target
