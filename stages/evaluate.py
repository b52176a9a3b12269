"""Stage `evaluate`: pass@1 and pass@k of each model on the benchmarks, in one table.

Models are `NAME=PATH` pairs. A directory with a router.json (the sft stage's out) is
served as routed specialists (K = 1 included) and asked in chat format; any other is a
plain causal LM that continues the prompt (the base model). For routed specialists the
table adds pass@1 per cluster and how many tasks each cluster received.
"""

import logging
from pathlib import Path

import click

from codealign.cli import Command, setup_logging
from codealign.errors import CodealignError
from codealign.evaluation.evaluate import (
    RoutedScorer,
    Scorer,
    load_benchmark,
    pass1_by_cluster,
    solved_share,
    status_counts,
    tasks_by_cluster,
)
from codealign.execution import pass_at_k
from codealign.io import atomic_path, write_json, write_jsonl, write_text
from codealign.lm.checkpoints import file_digest
from codealign.params import load_params
from codealign.specialists.sft import ROUTER_FILE

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


def markdown_table(summary: dict) -> str:
    """One row per model and benchmark: pass@1 at T_1 and pass@10 (or pass@n) at T_k."""
    lines = ["| benchmark | model | k | pass@1 | pass@k |", "|---|---|---|---|---|"]
    for bench, result in summary.items():
        for name, row in result["models"].items():
            passk = {key: v for key, v in row.items() if key.startswith("pass@") and "_t" in key}
            best = max(passk, key=lambda key: int(key[5:].split("_")[0]), default=None)
            shown = f"{passk[best]:.4f} ({best})" if best else "-"
            lines.append(
                f"| {bench} | {name} | {row.get('k', '-')} | {row['pass@1']:.4f} | {shown} |"
            )
    return "\n".join(lines) + "\n"


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
        b.name: {"tasks": len(b.records), "samples_per_task": p.n, "models": {}} for b in benchmarks
    }
    runs = {"pass1": p.pass1_temperature, "passk": p.passk_temperature}
    common = {
        "workers": p.workers,
        "timeout": p.timeout,
        "batch_size": p.batch_size,
        "max_new_tokens": p.max_new_tokens,
        "seed": params.train_seed,
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, path in models.items():
            routed = (path / ROUTER_FILE).is_file()
            scorer = (
                RoutedScorer(path, embed_cache_dir=embed_cache_dir, **common)
                if routed
                else Scorer(path, **common)
            )
            digest = file_digest(path)
            with scorer:
                for bench in benchmarks:
                    # The digest and seed tell a collector (ksweep, mixture) whether an
                    # experiment's scores are its own or its baseline's.
                    result = {
                        "model": str(path),
                        "model_digest": digest,
                        "train_seed": params.train_seed,
                    }
                    if routed:
                        cluster_of = scorer.routes(bench)
                        result["k"] = scorer.k
                        result["tasks_by_cluster"] = tasks_by_cluster(cluster_of, scorer.k)
                    for tag, temperature in runs.items():
                        samples, verdicts = scorer.run(bench, n=p.n, temperature=temperature)
                        write_jsonl(tmp / bench.name / name / f"samples_{tag}.jsonl", samples)
                        write_jsonl(tmp / bench.name / name / f"verdicts_{tag}.jsonl", verdicts)
                        scores = pass_at_k(verdicts, [1] if tag == "pass1" else [1, 10, 100])
                        if tag == "pass1":
                            result["pass@1"] = scores["pass@1"]
                            if routed:
                                result["pass@1_by_cluster"] = pass1_by_cluster(
                                    verdicts, cluster_of, scorer.k
                                )
                        else:
                            result.update({f"{k}_t{temperature:g}": v for k, v in scores.items()})
                            result.update(solved_share(verdicts))
                        result[f"statuses_{tag}"] = status_counts(verdicts)
                    summary[bench.name]["models"][name] = result
                    log.info("%s / %s: %s", bench.name, name, result)
    write_json(metrics, summary)
    write_text(table, markdown_table(summary))
    log.info("\n%s", markdown_table(summary))


if __name__ == "__main__":
    main()
