# Tonglu: `make run` starts the whole local stack; `make test` runs every test tier.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test unit integration e2e bench chaos lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/tonglu up

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests connectors/platforms

unit: install
	$(BIN)/python -m pytest -q tests/unit connectors/platforms

integration: install
	$(BIN)/python -m pytest -q tests/integration

e2e: install
	$(BIN)/python -m pytest -q tests/e2e

bench: install
	$(BIN)/tonglu bench

# 100,000 orders while workers (and the broker once) are killed; then the same against a separate broker
chaos: install
	$(BIN)/tonglu chaos
	$(BIN)/tonglu chaos --external-broker

lint: install
	$(BIN)/ruff check schemas connectors streams projections infra tests

clean:
	rm -rf .tonglu .pytest_cache
