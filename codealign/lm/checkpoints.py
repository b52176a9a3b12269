"""Where training stages keep checkpoints so that an interrupted run resumes.

DVC deletes a stage's outs before it runs the stage, so checkpoints cannot live in
the outs. They live under `.cache/checkpoints/<stage>/<fingerprint>/`, where the
fingerprint hashes everything that determines the run (params, input data hashes).
A run with other params or data never resumes a stale checkpoint; a rerun of an
interrupted run with the same ones picks up its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    return Path(os.environ.get("CODEALIGN_CACHE", ".cache"))


def fingerprint(obj: Any) -> str:
    """A short, stable hash of a JSON-serialisable description of a run."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of every file under a directory in sorted order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def checkpoint_dir(stage: str, description: Any) -> Path:
    return cache_root() / "checkpoints" / stage / fingerprint(description)


def _unfinished(checkpoint: Path) -> bool:
    """Whether a checkpoint's run has steps left. Trainer, resumed from a checkpoint of a
    finished run (global_step == max_steps), trains one step more than the run asked for;
    such a checkpoint is passed over and the run resumes from the one before it."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    max_steps = state.get("max_steps") or 0
    return not (max_steps > 0 and state.get("global_step", 0) >= max_steps)


def last_checkpoint(directory: str | Path) -> str | None:
    """The newest complete, unfinished `checkpoint-N` dir under `directory`, or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    complete = [
        p
        for p in directory.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and _unfinished(p)
    ]
    if not complete:
        return None
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1])))
