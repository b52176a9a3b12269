"""Stage `embed`: embed the curated training and validation questions (no `k` here)."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.curation.dedup import read_sft_jsonl
from codealign.io import atomic_path
from codealign.lm.embedding import Embedder, model_identity
from codealign.params import load_params
from codealign.specialists.cluster import EmbeddedSplits, embedder_spec, save_embeddings

log = logging.getLogger("stages.embed")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--data-dir",
    default="data/dedup",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Directory with the curated train.jsonl and validation.jsonl.",
)
@click.option("--out", default="data/embed", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--cache-dir",
    default=".cache/embeddings",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Embedding cache shared with dedup (not a DVC out).",
)
def main(params_file: str, data_dir: Path, out: Path, cache_dir: Path) -> None:
    """Write <split>.npy (one row per question, in file order) and meta.json (ids, embedder)."""
    setup_logging()
    params = load_params(params_file)
    embed = params["embed"]
    embedder = Embedder(embed, cache_dir)
    vectors, ids = {}, {}
    for split in ("train", "validation"):
        records = read_sft_jsonl(data_dir / f"{split}.jsonl")
        vectors[split] = embedder.embed([r["question"] for r in records], desc=f"embed {split}")
        ids[split] = [str(r["id"]) for r in records]
        log.info("read %d %s questions from %s", len(records), split, data_dir)
    identity = model_identity(embed.model, cache_dir / "model-fingerprints.json")
    splits = EmbeddedSplits(vectors, ids, embedder_spec(embed, identity))
    with atomic_path(out) as tmp:
        save_embeddings(tmp, splits)
    log.info(
        "wrote %s: %d x %d train, %d validation (%d texts encoded, the rest from the cache)",
        out,
        len(ids["train"]),
        splits.dimension,
        len(ids["validation"]),
        embedder.texts_encoded,
    )


if __name__ == "__main__":
    main()
