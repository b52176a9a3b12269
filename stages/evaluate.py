"""Stage `evaluate`: sample from a model on the benchmarks, score in the sandbox, report pass@k."""

import logging
from pathlib import Path

import click

from codealign.cli import Command, setup_logging
from codealign.evaluation import Scorer, load_benchmark, solved_share, status_counts
from codealign.execution import pass_at_k
from codealign.io import atomic_path, write_json, write_jsonl
from codealign.params import load_params

log = logging.getLogger("stages.evaluate")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--model",
    "model_dir",
    default="models/base_model",
    show_default=True,
    type=click.Path(path_type=Path),
    help="HF model dir to evaluate.",
)
@click.option("--seed-dir", default="data/seed", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    default="data/evaluate",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Samples and verdicts per benchmark.",
)
@click.option("--metrics", default="metrics/evaluate.json", show_default=True)
def main(params_file: str, model_dir: Path, seed_dir: Path, out: Path, metrics: str) -> None:
    """pass@1 at eval.pass1_temperature and pass@k at eval.passk_temperature, per benchmark."""
    setup_logging()
    params = load_params(params_file)
    p = params["eval"]
    raw_dir = Path(params["data"].raw_dir)
    benchmarks = [load_benchmark(name, seed_dir, raw_dir, p.limit) for name in p.benchmarks]
    summary = {}
    with (
        atomic_path(out) as tmp,
        Scorer(
            model_dir,
            workers=p.workers,
            timeout=p.timeout,
            batch_size=p.batch_size,
            max_new_tokens=p.max_new_tokens,
            seed=params.seed,
        ) as scorer,
    ):
        for bench in benchmarks:
            runs = {"pass1": p.pass1_temperature, "passk": p.passk_temperature}
            result = {"tasks": len(bench.records), "samples_per_task": p.n}
            for tag, temperature in runs.items():
                samples, verdicts = scorer.run(bench, n=p.n, temperature=temperature)
                write_jsonl(tmp / bench.name / f"samples_{tag}.jsonl", samples)
                write_jsonl(tmp / bench.name / f"verdicts_{tag}.jsonl", verdicts)
                scores = pass_at_k(verdicts, [1] if tag == "pass1" else [1, 10, 100])
                if tag == "pass1":
                    result["pass@1"] = scores["pass@1"]
                else:
                    result.update({f"{k}_t{temperature:g}": v for k, v in scores.items()})
                    result.update(solved_share(verdicts))
                result[f"statuses_{tag}"] = status_counts(verdicts)
            summary[bench.name] = result
            log.info("%s: %s", bench.name, result)
    write_json(metrics, summary)


if __name__ == "__main__":
    main()
