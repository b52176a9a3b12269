# codealign: the two commands are `make repro` and `make test`.
# Both create .venv if it is missing and install the pinned dependencies first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands run `python stages/...`: put the venv first on PATH for dvc and pytest.
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install repro test bench lock lint clean-venv

install: $(STAMP)

# torch first, alone: an unpinned resolution would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==$$(sed -n 's/^pip==//p' requirements.lock)"
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

# `make repro PROFILE=paper` first makes params.yaml the profile params/paper.yaml
# (`codealign profile`, which refuses to overwrite a params.yaml edited by hand).
PROFILE ?=

repro: install
	$(if $(PROFILE),$(BIN)/codealign profile $(PROFILE))
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q

bench: install
	@set -e; for script in benchmarks/bench_*.py; do \
		echo "== $$script" >&2; $(BIN)/python $$script; done

lint: install
	$(BIN)/ruff check codealign stages tests benchmarks
	$(BIN)/ruff format --check codealign stages tests benchmarks

# Refresh the pins: a fresh venv, torch from its pin, the project unconstrained, then freeze.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet "torch==2.13.0"
	.venv-lock/bin/python -m pip install --quiet -e ".[dev]"
	.venv-lock/bin/python -m pip freeze --all --exclude-editable \
		| sed 's/+cpu$$//' | grep -v '^codealign' > requirements.lock
	rm -rf .venv-lock
	@echo "requirements.lock refreshed"

clean-venv:
	rm -rf $(VENV)
