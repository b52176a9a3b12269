"""Loading a stage script (stages/<name>.py) the way `dvc repro` runs it.

stages/ holds scripts, not a package, so tests load them by path. Every test that calls a
stage's click command goes through `stage(name)`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def stage_module(name: str) -> ModuleType:
    """The module of stages/<name>.py, executed afresh (its folder on sys.path, as for a
    script: it imports stages/_checkout.py)."""
    if str(ROOT / "stages") not in sys.path:
        sys.path.insert(0, str(ROOT / "stages"))
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stage(name: str):
    """The click command (`main`) of stages/<name>.py."""
    return stage_module(name).main
