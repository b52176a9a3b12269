"""The seed experiment: curriculum minus shuffled pass@1 over seeds, mean and bootstrap CI.

The curated data stay fixed; each seed is one DVC experiment that changes only
`train_seed` (`dvc exp run --queue -S train_seed=S dpo_compare`), which reruns the
policy, best-of-N sampling, the pairs and both DPO runs with that seed. The queue runs
them one after another, and each experiment's `metrics/dpo_compare.json` holds the
difference at equal steps, the `train_seed` it was trained with and the digest of its
base model. Only runs that changed nothing but the seeds against the workspace's params
(`same_configuration`: not a K sweep's `-S k=10`), on the workspace's base model
(`models/base_model`), count; seeds that some such experiment (or the workspace) already
has are collected, not queued again.

Writes `metrics/dpo_seeds.json` (each seed's curriculum and shuffled curves; the report
draws their mean and a bootstrap band) and prints one JSON object: per-seed differences
(final, and mean over the stage boundaries) with the mean and a 95 % percentile
bootstrap interval of each.

    python benchmarks/dpo_seeds.py --seeds 0 1 2            # queue what is missing, run, collect
    python benchmarks/dpo_seeds.py --collect-only           # experiments already run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from codealign.dpo.stats import bootstrap_ci
from codealign.io import write_json
from codealign.lm.checkpoints import file_digest
from codealign.sweeps.experiments import experiment_rows, same_configuration

METRICS = "metrics/dpo_compare.json"
BASE_MODEL = Path("models/base_model")


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def collect(seeds: list[int] | None, skipped: Counter) -> dict[int, dict]:
    """`{train_seed: dpo_compare.json}` of every experiment DVC knows, on any commit, that
    changed only the seeds and ran on the workspace's base model; `skipped` counts the
    others.

    `dvc exp show` drops the list-valued curves, so each file is read from the
    experiment's commit. The seed is the one the comparison recorded, not the params: an
    experiment that did not rerun DPO (a K sweep that targets `evaluate`) carries its
    baseline's file, which names the baseline's seed.
    """
    base = file_digest(BASE_MODEL)
    dvc = [sys.executable, "-m", "dvc"]
    rows = json.loads(run(*dvc, "exp", "show", "--json", "--no-fetch", "--all-commits"))
    found: dict[int, dict] = {}
    finished = experiment_rows(rows, Counter())
    for row in same_configuration(finished, ("seed", "train_seed"), skipped):
        name = row.rev
        if name == "workspace":
            path = Path(METRICS)
            text = path.read_text(encoding="utf-8") if path.is_file() else None
        else:
            shown = subprocess.run(
                ["git", "show", f"{name}:{METRICS}"], capture_output=True, text=True
            )
            text = shown.stdout if shown.returncode == 0 else None
        metrics = json.loads(text) if text else None
        if not isinstance(metrics, dict) or not isinstance(metrics.get("train_seed"), int):
            continue
        if metrics.get("base_model_digest") != base:
            skipped["on another base model, or from before the digest was recorded"] += 1
            continue
        seed = metrics["train_seed"]
        if seeds is None or seed in seeds:
            found.setdefault(seed, metrics)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("metrics/dpo_seeds.json"))
    args = parser.parse_args()
    dvc = [sys.executable, "-m", "dvc"]
    if not args.collect_only:
        missing = [seed for seed in args.seeds if seed not in collect(args.seeds, Counter())]
        for seed in missing:
            queue = [*dvc, "exp", "run", "--queue", "-S", f"train_seed={seed}"]
            run(*queue, "-n", f"dpo-seed-{seed}", "dpo_compare")
        if missing:
            run(*dvc, "queue", "start", "--jobs", "1")
            run(*dvc, "queue", "logs", "--follow", f"dpo-seed-{missing[-1]}")
    skipped: Counter = Counter()
    found = collect(args.seeds, skipped)
    seeds = sorted(found)
    final = [found[s]["final_difference"] for s in seeds]
    mean = [found[s]["mean_difference_at_boundaries"] for s in seeds]
    curves = [
        {"seed": s, "curriculum": found[s]["curriculum"], "shuffled": found[s]["shuffled"]}
        for s in seeds
    ]
    if curves:
        write_json(args.out, {"base_model_digest": file_digest(BASE_MODEL), "seeds": curves})
    print(
        json.dumps(
            {
                "seeds": seeds,
                "missing_seeds": sorted(set(args.seeds) - set(found)),
                "skipped_runs": dict(skipped),
                "final_difference": dict(zip(seeds, final, strict=True)),
                "final_difference_ci": bootstrap_ci(final) if final else None,
                "mean_difference_at_boundaries": dict(zip(seeds, mean, strict=True)),
                "mean_difference_at_boundaries_ci": bootstrap_ci(mean) if mean else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
