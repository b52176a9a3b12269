"""Stage `sample`: N completions per DPO pool prompt from the SFT policy (on-policy best-of-N)."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.evaluate import load_benchmarks
from codealign.dpo.sample import (
    add_references,
    check_disjoint,
    pool_problems,
    sample_completions,
    sample_records,
    sample_with_vllm,
)
from codealign.evaluation import chat
from codealign.evaluation.policy import load_policy, resolve_policy
from codealign.io import atomic_path, read_jsonl, write_json, write_jsonl
from codealign.params import load_params

log = logging.getLogger("stages.sample")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--policy",
    "policy_dir",
    default="models/sft_baseline",
    show_default=True,
    type=click.Path(path_type=Path),
    help="SFT policy: model, adapter or router dir (models/sft where sample.policy is routed).",
)
@click.option(
    "--base-model",
    default=None,
    type=click.Path(path_type=Path),
    help="Base model of the adapters (default: as their adapter_config says).",
)
@click.option(
    "--pool", default="data/seed/pool.jsonl", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--seed-dir", default="data/seed", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", default="data/sample", show_default=True, type=click.Path(path_type=Path))
def main(params_file, policy_dir, base_model, pool, seed_dir, out) -> None:
    """Sample sample.n answers per pool question after checking the pool is not eval data."""
    setup_logging()
    params = load_params(params_file)
    p = params["sample"]
    records = read_jsonl(pool)
    if p.limit:
        records = records[: p.limit]
    pool_problems(records, str(pool))
    names = sorted({"tinyeval", *params["eval"].benchmarks, *params["dpo"].eval_benchmarks})
    raw_dir = Path(params["data"].raw_dir)
    eval_sets = {}
    for name in names:
        tinyeval = seed_dir / "tinyeval.jsonl"
        if name == "tinyeval" and (not tinyeval.is_file() or not tinyeval.stat().st_size):
            continue  # the real profile has no tinyeval
        eval_sets[name] = load_benchmarks([name], seed_dir, raw_dir, 0)[0].records
    checked = check_disjoint(records, eval_sets)
    log.info("pool of %d prompts is disjoint from %s", len(records), checked)

    spec = resolve_policy(policy_dir, p.policy, base_model)
    questions = [chat.question(r) for r in records]
    kwargs = dict(
        n=p.n, temperature=p.temperature, max_new_tokens=p.max_new_tokens, seed=params.train_seed
    )
    if p.backend == "vllm":
        answers, routes = sample_with_vllm(spec, questions, dtype=p.dtype, **kwargs)
    else:
        policy = load_policy(spec, dtype=p.dtype)
        answers, routes = sample_completions(policy, questions, batch_size=p.batch_size, **kwargs)
    if p.add_reference:
        answers = add_references(records, answers, str(pool))
    samples = list(sample_records(records, answers, routes))
    if p.add_reference:  # the reference is each task's last candidate: not on-policy
        for sample in samples:
            sample["reference"] = sample["completion_id"] == p.n
    with atomic_path(out) as tmp:
        write_jsonl(tmp / "samples.jsonl", samples)
        write_json(
            tmp / "meta.json",
            {
                "policy": spec.describe(),
                "prompts": len(records),
                "samples": len(samples),
                "add_reference": p.add_reference,
                "disjoint_from": checked,
            },
        )
    log.info("wrote %d samples for %d prompts to %s", len(samples), len(records), out)


if __name__ == "__main__":
    main()
