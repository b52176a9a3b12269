"""Stage `base_model`: pretrain the tiny Llama (or save an existing model) and score it."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.evaluation.evaluate import evaluate_model
from codealign.io import atomic_path, read_jsonl, write_json
from codealign.lm.checkpoints import checkpoint_dir, file_digest
from codealign.params import load_params
from codealign.pretraining.base_model import pretrain, save_existing
from codealign.tinyworld.corpus import EDIT_FORMAT, corpus_from_file
from codealign.tinyworld.text import InstructionSplit

log = logging.getLogger("stages.base_model")


def chars_by_kind(corpus: list[dict]) -> dict[str, int]:
    return {
        kind: sum(len(d["text"]) for d in corpus if d["kind"] == kind)
        for kind in ("text", "code", "edits")
    }


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option("--seed-dir", default="data/seed", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--out", default="models/base_model", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--metrics", default="metrics/base_model.json", show_default=True)
@click.option(
    "--live-dir",
    default="metrics/base_model",
    show_default=True,
    help="dvclive directory for the training curves.",
)
def main(params_file: str, seed_dir: Path, out: Path, metrics: str, live_dir: str) -> None:
    """Pretrain the base model on the tiny corpus and write its metrics."""
    setup_logging()
    params = load_params(params_file)
    p = params["base_model"]
    train_file = seed_dir / "train.jsonl"
    # The corpus is the master seed's; base_model.seed repeats pretraining on it.
    seed = params.seed_of("base_model")
    with atomic_path(out) as tmp:
        if p.name == "tiny":
            lintseq = params["lintseq"]
            held_out = [seed_dir / name for name in ("tinyeval.jsonl", "tinydev.jsonl")]
            held_out = [path for path in held_out if path.is_file()]
            heldout = params["heldout_instructions"]
            split = InstructionSplit(heldout.share, heldout.salt)
            corpus = corpus_from_file(train_file, p, lintseq, params.seed, held_out, split)
            run = {
                "params": p.to_dict(),
                "heldout_instructions": heldout.to_dict(),
                "edit_format": {key: getattr(lintseq, key) for key in EDIT_FORMAT},
                "seed": seed,
                "train": file_digest(train_file),
            }
            phases = p.phases()
            # A phase schedule: each phase's documents train its own steps (docs/code-share.md).
            phase_documents = (
                [[d["text"] for d in corpus if d["phase"] == phase.name] for phase in phases]
                if len(phases) > 1
                else None
            )
            stats = pretrain(
                p,
                [d["text"] for d in corpus],
                tmp,
                checkpoint_dir("base_model", run),
                Path(live_dir),
                seed,
                phase_documents,
            )
            stats["corpus_chars"] = chars_by_kind(corpus)
            for phase in stats.get("phases", []):
                phase["corpus_chars"] = chars_by_kind(
                    [d for d in corpus if d["phase"] == phase["name"]]
                )
        else:
            stats = save_existing(p.name, tmp, p.dtype)
            Path(live_dir).mkdir(parents=True, exist_ok=True)  # a DVC out: no curves to log
    stats.pop("resumed_from", None)
    stats.pop("train_runtime_s", None)
    # Scored on the dev set: the base model's steps are chosen on it; tinyeval is the
    # evaluate stage's alone (docs/heldout.md).
    tinydev = seed_dir / "tinydev.jsonl"
    if p.eval_tasks and tinydev.is_file():
        problems = read_jsonl(tinydev)[: p.eval_tasks]
        summary = evaluate_model(
            out,
            problems,
            n=p.eval_samples,
            temperature=p.eval_temperature,
            max_new_tokens=p.max_new_tokens,
            seed=seed,
        )
        stats.update(summary)
    stats["seed"] = seed
    write_json(metrics, stats)
    log.info("base model: %s", stats)


if __name__ == "__main__":
    main()
