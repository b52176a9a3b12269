"""Which files under results/ say how they were made, and the legacy ones that do not.

Every JSON file under results/ records the command that wrote it, the commit and the
profile: at its top level (a run record) or under `provenance` (a summary, findings).
`LEGACY` lists, each with its reason, the files written before that rule; no finding
reads them (`codealign findings` reads results/runs/ only), and a rerun replaces them
by files that carry their provenance (`codealign snapshot` for a profile's stage
metrics, the collectors for the rest); a listed file that records its provenance fails
the test, so its entry goes with the rerun. results/full/README.md documents the list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVENANCE_KEYS = ("command", "commit", "profile")

_COPIED = "a stage's metrics copied from metrics/ after `dvc repro` of the full profile at f9431c17"
_COLLECTED = "written by its collector before collectors recorded command, commit and profile"
_BY_HAND = (
    "hand-assembled from `dvc exp show`; `codealign equal-steps` now writes it, "
    "superseded by results/runs/k_equal_steps once rerun"
)

LEGACY: dict[str, str] = {
    **{
        f"results/full/{name}.json": _COPIED
        for name in (
            "base_model",
            "base_model_eval",
            "cluster",
            "curriculum",
            "dataset_metrics",
            "dedup",
            "dpo_compare",
            "evaluate",
            "lintseq",
            "lintseq_eval",
            "sft",
            "synth",
        )
    },
    "results/full/stage_times.json": "written by benchmarks/bench_stage_times.py --in-place "
    "before it recorded command, commit and profile",
    **{
        f"results/full/{name}.json": _COLLECTED
        for name in ("ksweep", "lintseq_seeds", "mixture", "dpo_seeds")
    },
    "results/full/k5_equal_steps.json": _BY_HAND,
    "results/full/k10_equal_steps.json": _BY_HAND,
}


def provenance_of(data: Any) -> dict[str, Any] | None:
    """The command/commit/profile a results JSON records, or None where it records none."""
    if not isinstance(data, dict):
        return None
    for where in (data, data.get("provenance")):
        if (
            isinstance(where, dict)
            and all(key in where for key in PROVENANCE_KEYS)
            and isinstance(where["command"], str)
            and where["command"].strip()
        ):
            return {key: where[key] for key in PROVENANCE_KEYS}
    return None


def unrecorded(root: Path) -> list[str]:
    """The JSON files under `root`/results that record no provenance and are not LEGACY."""
    missing = []
    for path in sorted((root / "results").rglob("*.json")):
        rel = path.relative_to(root).as_posix()
        if rel in LEGACY:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if provenance_of(data) is None:
            missing.append(rel)
    return missing
