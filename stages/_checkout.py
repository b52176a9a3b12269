"""Imported first by every stage script: `codealign` from this checkout, not another.

`pip install -e .` maps `codealign` to the checkout it was installed from, and a stage
script's own folder (stages/) comes first on `sys.path`, not the repository root. So a
stage run in another copy of the repository (a queued `dvc exp run` executes in
.dvc/tmp/exps/..., a git worktree shares the venv) would import the installed
checkout's code, which may differ from the copy's: the experiment would run code it was
not queued with. This puts the script's own repository first on `sys.path`.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path[:2]:
    sys.path.insert(1, ROOT)  # after stages/ itself, before site-packages
loaded = sys.modules.get("codealign")  # imported before this module (a test, say)
if loaded is not None and not str(Path(loaded.__file__).resolve()).startswith(ROOT + "/"):
    raise ImportError(f"{__file__}: codealign was imported from {loaded.__file__} already")
