# mpc-ledger: every target that needs Python depends on `setup`, which makes
# .venv once (and again only when pyproject.toml changes).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp
PYTEST_ARGS ?=
PY_DIRS := mpc_ledger tests scripts $(wildcard benchmarks/*.py)

.PHONY: setup test lint format protos clean demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# CPU torch pinned first, so nothing below can pull a CUDA build.
	$(BIN)/pip install --quiet 'torch==2.13.*'
	$(BIN)/pip install --quiet -e '.[dev]'
	# crypten's published pins (sklearn, torchvision) cannot install; the
	# modules it really imports are dependencies of mpc-ledger itself. Last,
	# so pip's resolver never re-reads those pins.
	$(BIN)/pip install --quiet --no-deps 'crypten==0.4.1'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

# A whole local consortium (3 hospitals, a dealer, an auditor), a joint training
# job from a scientist, the model fetched, compared with plaintext, verified.
demo: setup
	$(BIN)/python scripts/demo.py

protos: setup
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache build *.egg-info
