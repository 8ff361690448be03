# The two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use:
# `make run` installs what serving needs (the `server` extra), `make test` adds the dev tools.
#
# The first Python 3.11-3.13 found is used (PYTHON=... to choose). A .venv made by another or a
# vanished Python is rebuilt, not reused: its stamp names the interpreter's version.
SUPPORTED := import sys; assert (3, 11) <= sys.version_info[:2] < (3, 14)
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
             $$p -c '$(SUPPORTED)' 2>/dev/null && command -v $$p && break; done)
VENV   := .venv
BIN    := $(VENV)/bin
# "3.11.7" of the venv's interpreter, or "broken" when it does not run or is unsupported.
VENV_PY := $(shell $(BIN)/python -c '$(SUPPORTED); import platform; print(platform.python_version())' 2>/dev/null || echo broken)
DEPS   := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
RUNTIME_STAMP := $(VENV)/.runtime-$(DEPS)-$(VENV_PY)
DEV_STAMP     := $(VENV)/.dev-$(DEPS)-$(VENV_PY)
PORT   ?= 50051
HTTP_PORT ?= 8080
DATA   ?= data

.PHONY: install install-dev run test lint typecheck layers protos protos-check buf-lint clean \
        check-python newcomer

check-python:
	@test -n "$(PYTHON)" || { echo "sovrisk needs Python 3.11, 3.12 or 3.13 (python3 is $$(python3 --version 2>&1)); install one or run: make PYTHON=/path/to/python3.x"; exit 1; }

# A .venv whose interpreter is gone or unsupported is removed and made again.
define make_venv
	@if [ -d $(VENV) ] && [ "$(VENV_PY)" = broken ]; then \
	  echo "==> .venv does not run a supported Python: rebuilding it with $(PYTHON)"; rm -rf $(VENV); fi
	@test -d $(VENV) || { echo "==> creating .venv with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install --quiet --upgrade pip
endef

$(RUNTIME_STAMP): pyproject.toml | check-python
	$(make_venv)
	@echo "==> installing sovrisk and its runtime dependencies into .venv (first time: about a minute)"
	@start=$$(date +%s); $(BIN)/python -m pip install --quiet --progress-bar off -e '.[server]' \
	  && echo "==> installed in $$(( $$(date +%s) - start )) s"
	@rm -f $(VENV)/.runtime-* && touch $(VENV)/.runtime-$(DEPS)-$$($(BIN)/python -c 'import platform; print(platform.python_version())')

$(DEV_STAMP): pyproject.toml | check-python
	$(make_venv)
	@echo "==> installing sovrisk with the dev tools into .venv (first time: a few minutes)"
	@start=$$(date +%s); $(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]' \
	  && echo "==> installed in $$(( $$(date +%s) - start )) s"
	@v=$$($(BIN)/python -c 'import platform; print(platform.python_version())'); \
	  rm -f $(VENV)/.dev-* $(VENV)/.runtime-* && touch $(VENV)/.dev-$(DEPS)-$$v $(VENV)/.runtime-$(DEPS)-$$v

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

run: install
	$(BIN)/sovrisk serve --data $(DATA) --port $(PORT) --http-port $(HTTP_PORT) --print-ranking

lint: install-dev
	$(BIN)/ruff check models service sovrisk tests scripts benchmarks
	$(BIN)/ruff format --check models service sovrisk tests scripts benchmarks

typecheck: install-dev
	$(BIN)/mypy sovrisk

# The layering of models/ (graph -> engine -> analysis -> scoring; no transport in the domain).
layers: install-dev
	$(BIN)/lint-imports

protos: install-dev
	$(BIN)/python scripts/gen_protos.py
	$(BIN)/python -m sovrisk.service.gateway.proto_docs --write

protos-check: install-dev
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/python -m sovrisk.service.gateway.proto_docs --check

buf-lint: install-dev
	$(BIN)/python scripts/buf_lint.py

# The store tests run on SQLite and on a throwaway PostgreSQL (installed from Debian packages
# when missing and we are root, as in CI).
test: install-dev lint typecheck layers protos-check buf-lint
	scripts/ensure_system_packages.sh
	scripts/with_postgres.sh $(BIN)/python -m pytest
	$(MAKE) newcomer

# The README walked from fresh clones of HEAD as a newcomer would (tests/newcomer_walk.py):
# make's path on Python 3.11, and on 3.13 a plain pip install used outside any checkout.
newcomer: install-dev
	$(BIN)/python tests/newcomer_walk.py --python 3.11 --install make
	$(BIN)/python tests/newcomer_walk.py --python 3.13 --install pip

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
