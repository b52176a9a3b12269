"""Stage `base_model_eval`: held-out English and code perplexity and held-out English instructions.

The metrics of the code-share ablation (codealign.pretraining.base_model_eval,
`codealign mixture`). With `base_model.name: tiny` the stage rebuilds the pretraining
corpus from the same inputs as `base_model`, so that no held-out document the model
trained on is scored. The held-out code is tinydev's canonical solutions (the dev set:
tinyeval is the final evaluation's alone). Real data (`data.source: real`) has no
tinydev; its held-out code is HumanEval's canonical solutions.
"""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.io import write_json
from codealign.lm.checkpoints import file_digest
from codealign.params import load_params
from codealign.pretraining.base_model_eval import corpus_documents, measure
from codealign.tinyworld.corpus import read_code
from codealign.tinyworld.text import InstructionSplit

log = logging.getLogger("stages.base_model_eval")


def phases_of(base) -> dict:
    """`{"phases": [...]}` of a phase schedule, so the collector tells its metrics from
    a single-mixture baseline's; nothing where the schedule is off (unchanged file)."""
    if base.name != "tiny" or not base.scheduled:
        return {}
    return {"phases": [phase.to_dict() for phase in base.phases()]}


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--model", default="models/base_model", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--seed-dir",
    default="data/seed",
    show_default=True,
    type=click.Path(path_type=Path),
    help="train.jsonl (the corpus's code) and tinydev.jsonl (the held-out code).",
)
@click.option(
    "--out",
    default="metrics/base_model_eval.json",
    show_default=True,
    type=click.Path(path_type=Path),
)
def main(params_file: str, model: Path, seed_dir: Path, out: Path) -> None:
    """Score the base model on held-out English, held-out code and English instructions."""
    setup_logging()
    params = load_params(params_file)
    p, base = params["base_model_eval"], params["base_model"]
    heldout = params["heldout_instructions"]
    split = InstructionSplit(heldout.share, heldout.salt)
    seen: frozenset[str] = frozenset()
    tiny = base.name == "tiny"
    if tiny:
        train = seed_dir / "train.jsonl"
        seen = corpus_documents(train, base, params["lintseq"], params.seed, split)
        log.info("rebuilt the pretraining corpus from %s: %d distinct documents", train, len(seen))
    code = read_code(seed_dir / "tinydev.jsonl")
    if not code and params["data"].source == "real":
        # Real data has no tinydev: HumanEval's canonical solutions are the held-out code.
        from codealign.curation.datasets import load_humaneval

        code = [(r["prompt"], r["canonical_solution"]) for r in load_humaneval()]
    result = measure(model, code, p, params.seed, seen=seen, split=split)
    result.update(
        # Recorded so the collector can tell this model's metrics from a baseline's.
        code_share=base.code_share if tiny else None,
        base_seed=params.seed_of("base_model") if tiny else None,
        **phases_of(base),
        model_digest=file_digest(model),
        seed=params.seed,
    )
    write_json(out, result)
    log.info(
        "skipped as seen in the corpus: %d English, %d code documents",
        result["english"]["skipped_in_corpus"],
        result["code"]["skipped_in_corpus"],
    )
    log.info("wrote %s: %s", out, result)


if __name__ == "__main__":
    main()
