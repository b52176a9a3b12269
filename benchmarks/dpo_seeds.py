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
    python benchmarks/dpo_seeds.py --set curriculum.order=ascending   # another arm

Each seed counted also gets a run record, `results/runs/dpo_seeds/<run-id>.json`
(`codealign.sweeps.records`: params, seeds, commit, profile, this command, the seed's
dpo_compare.json); the DPO stages keep no per-task verdicts, so the records hold none.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

from codealign.dpo.stats import bootstrap_ci
from codealign.lm.checkpoints import file_digest
from codealign.sweeps.experiments import experiment_rows, same_configuration
from codealign.sweeps.records import (
    RUNS_DIR,
    flat,
    provenance,
    row_records,
    write_outputs,
    write_records,
)

METRICS = "metrics/dpo_compare.json"
BASE_MODEL = Path("models/base_model")


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def collect(
    seeds: list[int] | None, skipped: Counter, fixed: dict[str, object] | None = None
) -> dict[int, tuple[dict, object]]:
    """`{train_seed: dpo_compare.json}` of every experiment DVC knows, on any commit, that
    changed only the seeds and ran on the workspace's base model; `skipped` counts the
    others.

    `dvc exp show` drops the list-valued curves, so each file is read from the
    experiment's commit. The seed is the one the comparison recorded, not the params: an
    experiment that did not rerun DPO (a K sweep that targets `evaluate`, which has no DPO
    model among its deps; DPO's final models are `evaluate_dpo`'s) carries its
    baseline's file, which names the baseline's seed. `fixed` (`--set`): params a run
    must hold, which may differ from the workspace's. Values: (metrics, experiment row).
    """
    fixed = fixed or {}
    base = file_digest(BASE_MODEL)
    dvc = [sys.executable, "-m", "dvc"]
    rows = json.loads(run(*dvc, "exp", "show", "--json", "--no-fetch", "--all-commits"))
    found: dict[int, tuple[dict, object]] = {}
    finished = experiment_rows(rows, Counter())
    for row in same_configuration(finished, ("seed", "train_seed", *fixed), skipped):
        if any(flat(row.params).get(key) != value for key, value in fixed.items()):
            skipped["without the --set params"] += 1
            continue
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
            found.setdefault(seed, (metrics, row))
    return found


def parse_set(items: list[str]) -> dict[str, object]:
    """`KEY=VALUE` pairs, the value parsed as YAML (as `dvc exp run -S` does)."""
    import yaml

    fixed = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --set {item!r}: expected KEY=VALUE")
        fixed[key] = yaml.safe_load(text)
    return fixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("metrics/dpo_seeds.json"))
    parser.add_argument("--runs-dir", type=Path, default=RUNS_DIR / "dpo_seeds")
    parser.add_argument(
        "--set",
        dest="fixed",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A param the runs hold (queued with -S), e.g. curriculum.order=ascending.",
    )
    args = parser.parse_args()
    fixed = parse_set(args.fixed)
    command = shlex.join(["python", "benchmarks/dpo_seeds.py", *sys.argv[1:]])
    dvc = [sys.executable, "-m", "dvc"]
    if not args.collect_only:
        have = collect(args.seeds, Counter(), fixed)
        missing = [seed for seed in args.seeds if seed not in have]
        tag = "".join(f"-{value}" for value in fixed.values())
        for seed in missing:
            queue = [*dvc, "exp", "run", "--queue", "-S", f"train_seed={seed}"]
            for item in args.fixed:  # as typed: DVC parses the value itself
                queue += ["-S", item]
            run(*queue, "-n", f"dpo-seed-{seed}{tag}", "dpo_compare")
        if missing:
            run(*dvc, "queue", "start", "--jobs", "1")
            run(*dvc, "queue", "logs", "--follow", f"dpo-seed-{missing[-1]}{tag}")
    skipped: Counter = Counter()
    collected = collect(args.seeds, skipped, fixed)
    found = {seed: metrics for seed, (metrics, _) in collected.items()}
    seeds = sorted(found)
    final = [found[s]["final_difference"] for s in seeds]
    mean = [found[s]["mean_difference_at_boundaries"] for s in seeds]
    curves = [
        {"seed": s, "curriculum": found[s]["curriculum"], "shuffled": found[s]["shuffled"]}
        for s in seeds
    ]
    if curves:
        by_rev = {row.rev: found[seed] for seed, (_, row) in collected.items()}
        records = row_records(
            "dpo_seeds",
            [collected[seed][1] for seed in seeds],
            repo=Path("."),
            command=command,
            swept_keys=("seed", "train_seed", *fixed),
            swept_of=lambda row: {**fixed, "train_seed": by_rev[row.rev]["train_seed"]},
            metrics_of=lambda row: by_rev[row.rev],
            task_files_of=lambda row: {},
            profile_root=Path("."),
        )
        write_records(args.runs_dir, records)
        profiles = {record["profile"] for record in records}
        prov = provenance(command, Path("."), profiles.pop() if len(profiles) == 1 else None)
        summary = {"base_model_digest": file_digest(BASE_MODEL), "set": fixed, "seeds": curves}
        summary["records"] = [str(args.runs_dir / f"{r['run_id']}.json") for r in records]
        write_outputs(args.out, None, summary, None, prov)
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
