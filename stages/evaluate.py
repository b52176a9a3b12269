"""Stage `evaluate`: pass@1 and pass@k of each model on the benchmarks, in one table.

Models are `NAME=PATH` pairs, each a policy (`codealign.evaluation.policy`): a directory
with a router.json (the sft stage's out) is served as routed specialists (K = 1
included) and a PEFT adapter dir as that adapter over its base model, both asked in the
chat format (`codealign.evaluation.chat`); any other is a plain causal LM that continues
the prompt (the base model). Every run goes through `codealign.evaluation.evaluate.evaluate`.
For an sft dir the table adds pass@1 per cluster and how many tasks each cluster received.

The final evaluation: the only script that scores models on tinyeval (with
`lintseq_eval`, the final evaluation of the LintSeq experiment). dvc.yaml runs it as two
stages with the same `eval` params: `evaluate` (base, k1, routed; no DPO model among its
deps, so a K sweep `dvc exp run -S k=10 evaluate` leaves DPO alone) and `evaluate_dpo`
(`dpo_stage_1..4`, `dpo_shuffled`; out data/evaluate_dpo, metrics/evaluate_dpo.json and
.md), on whose verdicts `dpo_compare` compares curriculum and shuffled. Each benchmark
records its `tasks` and
`functions` (distinct reference solutions up to renaming); each pass@k its 95% bootstrap
interval over tasks (`<key>_ci`: low, high; `codealign.dpo.stats`), never over samples.

With `specialists.fallback_margin` above 0, a routed model (K > 1) answers a question
whose routing margin is below it with the `--generalist` adapter (the K = 1 sft dir);
its row records `fallback_margin`, and the generalist is the last entry of its
`tasks_by_cluster` and `pass@1_by_cluster`.
"""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.stats import task_passk_ci
from codealign.errors import CodealignError
from codealign.evaluation.evaluate import distinct_functions, evaluate, load_benchmark
from codealign.evaluation.policy import SamplingSpec, load_policy, resolve_policy
from codealign.execution import Limits, Sandbox
from codealign.io import atomic_path, write_json, write_jsonl, write_text
from codealign.lm.checkpoints import file_digest
from codealign.params import load_params
from codealign.specialists.adapters import read_router_manifest

log = logging.getLogger("stages.evaluate")

DEFAULT_MODELS = ("base=models/base_model", "k1=models/sft_baseline", "routed=models/sft")


def parse_models(pairs: tuple[str, ...]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise CodealignError(f"--model must be NAME=PATH, got '{pair}'")
        if name in models:
            raise CodealignError(f"--model: the name '{name}' is given twice")
        if not Path(path).is_dir():
            raise CodealignError(f"{path}: model directory not found (--model {pair})")
        models[name] = Path(path)
    return models


CONFIDENCE = 0.95  # of the bootstrap interval over tasks beside every pass@k


def interval(row: dict, key: str) -> str:
    """`0.4500 [0.3000, 0.6000]`: a score and its interval over tasks, when recorded."""
    ci = row.get(f"{key}_ci")
    shown = f"{row[key]:.4f}"
    return f"{shown} [{ci['low']:.4f}, {ci['high']:.4f}]" if ci else shown


def markdown_table(summary: dict) -> str:
    """One row per model and benchmark: pass@1 at T_1 and pass@10 (or pass@n) at T_k,
    each with its 95% bootstrap interval over tasks."""
    lines = [
        "| benchmark | tasks | functions | model | k | pass@1 [95% CI] | pass@k [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for bench, result in summary.items():
        for name, row in result["models"].items():
            passk = [
                key
                for key in row
                if key.startswith("pass@") and "_t" in key and not key.endswith("_ci")
            ]
            best = max(passk, key=lambda key: int(key[5:].split("_")[0]), default=None)
            shown = f"{interval(row, best)} ({best})" if best else "-"
            lines.append(
                f"| {bench} | {result['tasks']} | {result.get('functions', '-')} | {name} "
                f"| {row.get('k', '-')} | {interval(row, 'pass@1')} | {shown} |"
            )
    return "\n".join(lines) + "\n"


def task_interval(verdicts: list[dict], k: int) -> dict[str, float]:
    """The 95% bootstrap interval of pass@k over tasks (resampled tasks, not samples)."""
    ci = task_passk_ci(verdicts, k, confidence=CONFIDENCE)
    return {"low": ci["low"], "high": ci["high"]}


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--model",
    "model_pairs",
    multiple=True,
    default=DEFAULT_MODELS,
    show_default=True,
    help="NAME=PATH of a model to evaluate; repeat for several (one table).",
)
@click.option("--seed-dir", default="data/seed", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    default="data/evaluate",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Samples and verdicts per benchmark and model.",
)
@click.option("--metrics", default="metrics/evaluate.json", show_default=True)
@click.option("--table", default="metrics/evaluate.md", show_default=True)
@click.option(
    "--generalist",
    default="models/sft_baseline",
    show_default=True,
    type=click.Path(path_type=Path),
    help="K = 1 sft dir a routed model falls back to (specialists.fallback_margin > 0).",
)
@click.option(
    "--embed-cache-dir",
    default=".cache/embeddings",
    show_default=True,
    help="Embedding cache for routing (not a DVC out).",
)
def main(
    params_file: str,
    model_pairs: tuple[str, ...],
    seed_dir: Path,
    out: Path,
    metrics: str,
    table: str,
    generalist: Path,
    embed_cache_dir: str,
) -> None:
    """pass@1 at eval.pass1_temperature and pass@k at eval.passk_temperature, per model."""
    setup_logging()
    params = load_params(params_file)
    p = params["eval"]
    models = parse_models(model_pairs)
    raw_dir = Path(params["data"].raw_dir)
    benchmarks = [load_benchmark(name, seed_dir, raw_dir, p.limit) for name in p.benchmarks]
    summary = {
        b.name: {
            "tasks": len(b.records),
            "functions": distinct_functions(b),
            "samples_per_task": p.n,
            "confidence": CONFIDENCE,
            "models": {},
        }
        for b in benchmarks
    }
    runs = {"pass1": p.pass1_temperature, "passk": p.passk_temperature}
    with (
        atomic_path(out) as tmp,
        Sandbox(workers=p.workers, limits=Limits(timeout=p.timeout)) as sandbox,
    ):
        tmp.mkdir()
        for name, path in models.items():
            # An sft dir (router.json) is served as routed specialists, K = 1 included, and
            # asked in chat format; any other dir is a base model continuing the prompt.
            spec = resolve_policy(path, "routed", plain="base")
            margin = params["specialists"].fallback_margin if spec.routed else 0.0
            policy = load_policy(
                spec,
                embed_cache_dir=embed_cache_dir,
                fallback=generalist if margin > 0 else None,
                fallback_margin=margin,
            )
            digest = file_digest(path)
            for bench in benchmarks:
                # The digest and seed tell a collector (ksweep, mixture) whether an
                # experiment's scores are its own or its baseline's.
                result = {
                    "model": str(path),
                    "model_digest": digest,
                    "train_seed": params.train_seed,
                }
                if spec.router_dir is not None:
                    result["k"] = policy.k
                    # What the adapters trained on (sft_baseline.train_data; a router.json
                    # without the key is the curated set's), so a collector can tell the
                    # seed-only arm's scores from the curated one's.
                    manifest = read_router_manifest(spec.router_dir)
                    result["train_data"] = manifest.get("train_data", "curated")
                if margin > 0:
                    result["fallback_margin"] = margin
                for tag, temperature in runs.items():
                    sampling = SamplingSpec(
                        p.n, temperature, p.max_new_tokens, p.batch_size, params.train_seed
                    )
                    ks = [1] if tag == "pass1" else [1, 10, 100]
                    run = evaluate(policy, bench, sampling, sandbox, ks=ks)
                    write_jsonl(tmp / bench.name / name / f"samples_{tag}.jsonl", run.samples)
                    write_jsonl(tmp / bench.name / name / f"verdicts_{tag}.jsonl", run.verdicts)
                    scores = {k: v for k, v in run.metrics.items() if k.startswith("pass@")}
                    if spec.router_dir is not None:
                        result.setdefault("tasks_by_cluster", run.metrics["tasks_by_cluster"])
                    if tag == "pass1":
                        result["pass@1"] = scores["pass@1"]
                        result["pass@1_ci"] = task_interval(run.verdicts, 1)
                        if spec.router_dir is not None:
                            result["pass@1_by_cluster"] = run.metrics["pass@1_by_cluster"]
                    else:
                        for key, value in scores.items():
                            if "_by_" in key:
                                continue
                            result[f"{key}_t{temperature:g}"] = value
                            result[f"{key}_t{temperature:g}_ci"] = task_interval(
                                run.verdicts, int(key[len("pass@") :])
                            )
                        solved = {k: v for k, v in run.metrics.items() if k.startswith("solved_")}
                        result.update(solved)
                    result[f"statuses_{tag}"] = run.metrics["statuses"]
                summary[bench.name]["models"][name] = result
                log.info("%s / %s: %s", bench.name, name, result)
            del policy
    write_json(metrics, summary)
    write_text(table, markdown_table(summary))
    log.info("\n%s", markdown_table(summary))


if __name__ == "__main__":
    main()
