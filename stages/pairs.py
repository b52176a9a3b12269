"""Stage `pairs`: best vs worst completion per task, with reference log-probs stored."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.dpo.pairs import mine_pairs, reference_logps
from codealign.evaluation.policy import load_policy, resolve_policy
from codealign.io import atomic_path, read_jsonl, write_json, write_jsonl
from codealign.params import load_params
from codealign.specialists.adapters import adapter_name

log = logging.getLogger("stages.pairs")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--policy",
    "policy_dir",
    default="models/sft_baseline",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The reference policy: the SFT policy `sample` drew from (models/sft where "
    "sample.policy is routed).",
)
@click.option("--base-model", default=None, type=click.Path(path_type=Path))
@click.option(
    "--scored",
    "scored_dir",
    default="data/score",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option("--out", default="data/pairs", show_default=True, type=click.Path(path_type=Path))
def main(params_file, policy_dir, base_model, scored_dir, out) -> None:
    """Mine pairs (ties give none) and score them once under the reference policy."""
    setup_logging()
    params = load_params(params_file)
    p = params["pairs"]
    pairs, counts = mine_pairs(read_jsonl(scored_dir / "scored.jsonl"))
    log.info("pairs: %s", counts)
    if not pairs:
        log.warning("no pairs: every task's completions tied (%d ties)", counts["ties"])
    spec = resolve_policy(policy_dir, params["sample"].policy, base_model)
    dropped = 0
    if pairs:
        policy = load_policy(spec, dtype=params["sample"].dtype, fused_lm_head=True)
        pairs, dropped = reference_logps(
            policy.model,
            policy.tokenizer,
            pairs,
            batch_size=p.batch_size,
            max_length=p.max_length,
            adapter_of=(lambda pair: adapter_name(pair["adapter"])) if spec.adapters else None,
        )
    meta = {
        **counts,
        "pairs": len(pairs),
        "prompt_too_long": dropped,
        "max_length": p.max_length,
        "reference": spec.describe(),
    }
    with atomic_path(out) as tmp:
        write_jsonl(tmp / "pairs.jsonl", pairs)
        write_json(tmp / "meta.json", meta)
    log.info("wrote %d pairs to %s: %s", len(pairs), out, meta)


if __name__ == "__main__":
    main()
