"""Hardware guards: params this machine cannot honour stop a stage before it loads a model.

A profile written for a GPU (`params/paper.yaml`) run on a CPU machine would otherwise fail
deep inside a library (bitsandbytes: "Cannot access accelerator device when none is
available") after minutes of work, naming no param. `check(params_file, stage)` runs
before a stage's own code (codealign.command.Command calls it for every stage script) and
raises `CodealignError` with one line naming the key and the reason.

Only the params sections a stage declares in dvc.yaml are checked, so the paper profile
can still curate data (`dvc repro dedup`) on a CPU machine; a stage dvc.yaml does not list
is checked against every key. The checks read the machine without importing torch where
they can: no NVIDIA device node means no CUDA, whatever torch build is installed.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shlex
from collections.abc import Callable
from pathlib import Path

import yaml

from codealign.errors import CodealignError


def cuda_problem() -> str | None:
    """Why CUDA cannot be used here, or None when it can."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "CUDA_VISIBLE_DEVICES hides every GPU"
    if not (os.path.exists("/proc/driver/nvidia/version") or glob.glob("/dev/nvidia[0-9]*")):
        return "no CUDA GPU on this machine"
    import torch  # only where a GPU exists

    if not torch.cuda.is_available():
        return f"torch {torch.__version__} cannot use the GPU (a CPU build?)"
    return None


def module_problem(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (make install GPU=1 installs the gpu extra)"
    return None


def _nf4(value: object) -> str | None:
    if value != "nf4":
        return None
    return cuda_problem() or module_problem("bitsandbytes")


def _vllm(value: object) -> str | None:
    if value != "vllm":
        return None
    return module_problem("vllm") or cuda_problem()


def _fp16(value: object) -> str | None:
    return cuda_problem() if value == "float16" else None


def _device(value: object) -> str | None:
    return cuda_problem() if isinstance(value, str) and value.startswith("cuda") else None


# params key -> what it needs (None: fine here).
CHECKS: dict[str, Callable[[object], str | None]] = {
    "sft.quantization": _nf4,
    "sample.backend": _vllm,
    "dpo.dtype": _fp16,
    "embed.device": _device,
}


def stage_sections(stage: str, dvc_file: Path = Path("dvc.yaml")) -> set[str] | None:
    """The params sections of every dvc stage whose command runs stages/<stage>.py."""
    try:
        stages = yaml.safe_load(dvc_file.read_text())["stages"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    sections: set[str] = set()
    found = False
    for spec in stages.values():
        body = spec.get("do", spec) if isinstance(spec, dict) else {}
        words = shlex.split(str(body.get("cmd", "")).replace("\n", " "))
        if f"stages/{stage}.py" not in words:
            continue
        found = True
        for entry in body.get("params", []) or []:
            keys = entry.values() if isinstance(entry, dict) else [[entry]]
            for group in keys:
                sections |= {str(k).split(".")[0] for k in group}
    return sections if found else None


def check(params_file: str | Path, stage: str | None = None) -> None:
    """Raise CodealignError for the first key of `params_file` this machine cannot honour."""
    try:
        raw = yaml.safe_load(Path(params_file).read_text())
    except (OSError, yaml.YAMLError):
        return  # load_params reports a missing or malformed file with its own line
    if not isinstance(raw, dict):
        return
    wanted = stage_sections(stage) if stage else None
    for key, needs in CHECKS.items():
        section, field = key.split(".")
        if wanted is not None and section not in wanted:
            continue
        values = raw.get(section)
        if not isinstance(values, dict) or field not in values:
            continue
        problem = needs(values[field])
        if problem:
            raise CodealignError(
                f"{params_file}: {key} {values[field]!r} cannot run here: {problem}"
            )
