# codealign: the two commands are `make repro` and `make test`.
# Both create .venv if it is missing and install the pinned dependencies first.
#
# CPU (the default): requirements.lock, Python 3.11 or 3.12. torch comes from pip's
# configured index; pass TORCH_INDEX=https://download.pytorch.org/whl/cpu for its CPU-only
# build (PyPI's Linux wheel is the CUDA build, which also runs on CPU but is larger).
# CUDA machines: `make install GPU=1` (or `make test GPU=1`, ...) installs
# requirements-gpu.lock instead: PyPI's CUDA torch, bitsandbytes and vLLM (Python 3.12).

PYTHON ?= $(shell command -v $(if $(GPU),python3.12,python3.11) || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
comma := ,
GPU ?=
LOCK := $(if $(GPU),requirements-gpu.lock,requirements.lock)
EXTRAS := $(if $(GPU),dev$(comma)gpu,dev)
STAMP := $(VENV)/.installed$(if $(GPU),-gpu)
TORCH_INDEX ?=
# Stage commands run `python stages/...`: put the venv first on PATH for dvc and pytest.
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install repro test bench lock lock-gpu lint clean-venv

install: $(STAMP)

# torch first, alone, at the lock's pin: the build (CPU or CUDA) is chosen here, not by the
# resolver.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==$$(sed -n 's/^pip==//p' requirements.lock)"
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) \
		"torch==$$(sed -n 's/^torch==//p' $(LOCK))"
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[$(EXTRAS)]"
	@touch $(STAMP)

# `make repro PROFILE=paper` first makes params.yaml the profile params/paper.yaml
# (`codealign profile`, which refuses to overwrite a params.yaml edited by hand).
PROFILE ?=

repro: install
	$(if $(PROFILE),$(BIN)/codealign profile $(PROFILE))
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q --durations=25

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
	.venv-lock/bin/python -m pip install --quiet "torch==$$(sed -n 's/^torch==//p' requirements.lock)"
	.venv-lock/bin/python -m pip install --quiet -e ".[dev]"
	.venv-lock/bin/python -m pip freeze --all --exclude-editable \
		| sed 's/+cpu$$//' | grep -v '^codealign' > requirements.lock
	rm -rf .venv-lock
	@echo "requirements.lock refreshed"

# The CUDA lock, resolved for Linux x86-64 and Python 3.12 without installing anything:
# requirements.lock's pins where vLLM allows them (it pins torch and bounds transformers).
PYTHON_GPU ?= python3.12
lock-gpu:
	grep -v -i -E '^(torch|transformers|tokenizers|huggingface[-_]hub|numpy|setuptools|pip)==' requirements.lock > .lock-gpu.c
	$(PYTHON_GPU) -m pip install --quiet --dry-run --ignore-installed --report .lock-gpu.json \
		-c .lock-gpu.c "torch==$$(sed -n 's/^torch==//p' requirements.lock)" -e ".[dev,gpu]"
	printf '%s\n' "# CUDA lock (make install GPU=1): Linux x86-64, Python 3.12; requirements.lock's pins where vLLM" \
		"# allows them (it pins torch and bounds transformers, huggingface-hub, numpy). Refresh: make lock-gpu." \
		> requirements-gpu.lock
	$(PYTHON_GPU) -c 'import json; r = json.load(open(".lock-gpu.json")); \
		pins = sorted((i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in r["install"]); \
		print("".join(f"{n}=={v}\n" for n, v in pins if n != "codealign"), end="")' >> requirements-gpu.lock
	rm -f .lock-gpu.c .lock-gpu.json
	@echo "requirements-gpu.lock refreshed"

clean-venv:
	rm -rf $(VENV)
