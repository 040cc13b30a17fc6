# mpc-ledger: every target that needs Python depends on `setup`, which makes
# .venv once (and again only when pyproject.toml changes).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: setup test lint format protos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# CPU torch pinned first, so nothing below can pull a CUDA build.
	$(BIN)/pip install --quiet 'torch==2.13.*'
	# crypten's published pins (sklearn, torchvision) cannot install; the
	# modules it really imports are dependencies of mpc-ledger itself.
	$(BIN)/pip install --quiet --no-deps 'crypten==0.4.1'
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check mpc_ledger tests scripts benchmarks
	$(BIN)/ruff format --check mpc_ledger tests scripts benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff format mpc_ledger tests scripts benchmarks
	$(BIN)/ruff check --fix mpc_ledger tests scripts benchmarks

protos: setup
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
