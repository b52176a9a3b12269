"""Stage `dpo_compare`: pass@1 against step, curriculum against shuffled, at equal steps.

Two readings. The curves: pass@1 on the dev set (`dpo.eval_benchmarks`: tinydev, MBPP
validation) at every stage boundary, from the DPO stages' own metrics. The verdict:
the final curriculum model (`dpo_stage_4`) against the final shuffled model on each
final benchmark the `evaluate_dpo` stage scored them on (tinyeval), paired over tasks
(`codealign.dpo.stats.compare_on_tasks`: mean difference of per-task pass rates, its 95%
bootstrap interval over tasks, the paired permutation test), stated as 'inconclusive'
when the interval contains 0.
"""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.plots import pass_curves
from codealign.dpo.schedule import compare
from codealign.dpo.stats import compare_on_tasks
from codealign.errors import CodealignError
from codealign.io import read_json, read_jsonl, write_json
from codealign.lm.checkpoints import file_digest
from codealign.params import load_params

log = logging.getLogger("stages.dpo_compare")

FINAL_MODELS = ("dpo_stage_4", "dpo_shuffled")  # the names dvc.yaml gives `evaluate_dpo`


def final_comparison(evaluated: Path) -> dict:
    """Per benchmark `evaluate_dpo` scored both final models on: curriculum against shuffled,
    paired over tasks (pass@1 verdicts, at eval.pass1_temperature)."""
    found = {}
    if not evaluated.is_dir():
        raise CodealignError(f"{evaluated}: not found (the evaluate_dpo stage's out)")
    for bench in sorted(p for p in evaluated.iterdir() if p.is_dir()):
        files = [bench / name / "verdicts_pass1.jsonl" for name in FINAL_MODELS]
        if all(f.is_file() for f in files):
            curriculum, shuffled = (read_jsonl(f) for f in files)
            found[bench.name] = compare_on_tasks(
                curriculum, shuffled, names=("curriculum", "shuffled")
            )
    if not found:
        raise CodealignError(
            f"{evaluated}: no benchmark with verdicts of both {' and '.join(FINAL_MODELS)}; "
            "run the evaluate_dpo stage with them (dvc.yaml passes both)"
        )
    return found


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--metrics-dir", default="metrics/dpo", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--out", default="metrics/dpo_compare.json", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--evaluated",
    default="data/evaluate_dpo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The evaluate_dpo stage's out: the final models' verdicts on the final benchmarks.",
)
@click.option(
    "--base",
    default="models/base_model",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The base model under both policies; its digest is recorded.",
)
@click.option(
    "--plot",
    default="metrics/dpo_compare/pass_at_1.png",
    show_default=True,
    type=click.Path(path_type=Path),
)
def main(params_file, metrics_dir, evaluated, out, base, plot) -> None:
    """Read metrics/dpo/stage_*.json and shuffled.json; write the comparison and its plot.

    The comparison records the `train_seed` it was trained with and the digest of the
    base model, so a seed experiment (benchmarks/dpo_seeds.py) knows which seed each
    experiment's difference belongs to, and on which base model.
    """
    setup_logging()
    params = load_params(params_file)
    stages = [read_json(p) for p in sorted(metrics_dir.glob("stage_*.json"))]
    shuffled = read_json(metrics_dir / "shuffled.json")
    result = {
        "train_seed": params.train_seed,
        "base_model_digest": file_digest(base),
        "curve_benchmarks": list(params["dpo"].eval_benchmarks),
        **compare(stages, shuffled),
        "final_evaluation": final_comparison(evaluated),
    }
    pass_curves(
        {"curriculum": result["curriculum"], "shuffled": result["shuffled"]},
        [p["step"] for p in result["curriculum"][1:]],
        plot,
    )
    write_json(out, result)
    log.info(
        "curriculum - shuffled at step %d (%s): %+.4f",
        result["steps"],
        ", ".join(result["curve_benchmarks"]),
        result["final_difference"],
    )
    for bench, row in result["final_evaluation"].items():
        log.info(
            "%s, curriculum - shuffled over %d tasks: %+.4f [%.4f, %.4f]; %s",
            bench, row["tasks"], row["mean_difference"], row["low"], row["high"],
            row["conclusion"],
        )  # fmt: skip


if __name__ == "__main__":
    main()
