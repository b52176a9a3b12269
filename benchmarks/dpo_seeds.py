"""The seed experiment: curriculum minus shuffled pass@1 over seeds, mean and bootstrap CI.

Each seed is one DVC experiment of the whole pipeline (`dvc exp run --queue -S seed=S`);
the queue runs them one after another, and each experiment's `metrics/dpo_compare.json`
holds the difference at equal steps. Prints one JSON object: per-seed differences (final
and mean over the stage boundaries) and, for each, the mean and a 95 % percentile
bootstrap interval.

    python benchmarks/dpo_seeds.py --seeds 0 1 2            # queue, run, collect
    python benchmarks/dpo_seeds.py --collect-only            # experiments already run
"""

from __future__ import annotations

import argparse
import json
import subprocess

from codealign.dpo.stats import bootstrap_ci

METRICS = "metrics/dpo_compare.json"


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def collect(seeds: list[int] | None) -> dict[int, dict]:
    """`{seed: dpo_compare metrics}` of every experiment `dvc exp show` knows."""
    rows = json.loads(run("dvc", "exp", "show", "--json", "--no-fetch"))
    found: dict[int, dict] = {}
    for row in rows:
        for exp in [row, *[e for group in row.get("experiments") or [] for e in group["revs"]]]:
            data = exp.get("data") or {}
            params = data.get("params", {}).get("params.yaml", {}).get("data", {})
            metrics = data.get("metrics", {}).get(METRICS, {}).get("data")
            if metrics and "seed" in params and (seeds is None or params["seed"] in seeds):
                found[int(params["seed"])] = metrics
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--collect-only", action="store_true")
    args = parser.parse_args()
    if not args.collect_only:
        for seed in args.seeds:
            run("dvc", "exp", "run", "--queue", "-S", f"seed={seed}", "-n", f"dpo-seed-{seed}")
        run("dvc", "queue", "start", "--jobs", "1")
        run("dvc", "queue", "logs", "--follow", f"dpo-seed-{args.seeds[-1]}")
    found = collect(args.seeds)
    missing = sorted(set(args.seeds) - set(found))
    final = [found[s]["final_difference"] for s in sorted(found)]
    mean = [found[s]["mean_difference_at_boundaries"] for s in sorted(found)]
    print(
        json.dumps(
            {
                "seeds": sorted(found),
                "missing_seeds": missing,
                "final_difference": dict(zip(sorted(found), final, strict=True)),
                "final_difference_ci": bootstrap_ci(final) if final else None,
                "mean_difference_at_boundaries_ci": bootstrap_ci(mean) if mean else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
