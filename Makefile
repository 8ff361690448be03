# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT   ?= 50051
HTTP_PORT ?= 8080
DATA   ?= data

.PHONY: install run test lint typecheck layers protos protos-check buf-lint clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/sovrisk serve --data $(DATA) --store var/ --port $(PORT) --http-port $(HTTP_PORT) --print-ranking

lint: install
	$(BIN)/ruff check models service tests scripts benchmarks
	$(BIN)/ruff format --check models service tests scripts benchmarks

typecheck: install
	$(BIN)/mypy models service

# The layering of models/ (graph -> engine -> analysis -> scoring; no transport in the domain).
layers: install
	$(BIN)/lint-imports

protos: install
	$(BIN)/python scripts/gen_protos.py

protos-check: install
	$(BIN)/python scripts/gen_protos.py --check

buf-lint: install
	$(BIN)/python scripts/buf_lint.py

# The store tests run on SQLite and on a throwaway PostgreSQL (installed from Debian packages
# when missing and we are root, as in CI).
test: install lint typecheck layers protos-check buf-lint
	scripts/ensure_system_packages.sh
	scripts/with_postgres.sh $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
