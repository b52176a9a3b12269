"""Stage `sft`: one LoRA adapter per cluster on the base model, and the router manifest.

With `--baseline` it is the K = 1 baseline instead: one adapter on all the data, no
clusters read (the dvc stage `sft_baseline`, which does not depend on `k`). With
`sft_baseline.train_data: seed` that adapter trains on the curated set's S1 and S2 items
only (the records whose source is seed_s1 or seed_s2, as dedup kept them), for as many
optimizer steps as the whole curated set takes at `sft.epochs`, and picks its checkpoint
on the same validation items: the seed-only arm, which differs from the curated one in
its training items alone (docs/specialists.md).

With `specialists.init: generalist` every cluster's adapter starts from the K = 1
adapter's weights (`--generalist`, the sft_baseline stage's out) and is fine-tuned on
its cluster; dvc.yaml declares that dir a dep of `sft` whatever the param says.
"""

import logging
from collections import Counter
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click
import numpy as np

from codealign.command import Command, setup_logging
from codealign.curation.dedup import read_sft_jsonl
from codealign.errors import CodealignError
from codealign.io import atomic_path, read_jsonl, write_json
from codealign.params import load_params
from codealign.specialists.adapters import k1_adapter, model_digest
from codealign.specialists.cluster import load_cluster_model, load_embeddings
from codealign.specialists.sft import optimizer_steps, seed_records, train_specialists

log = logging.getLogger("stages.sft")


def cluster_labels(assignments: Path, records: list[dict], split: str) -> list[int]:
    """The cluster of each record of `split`, in record order, from assignments.jsonl."""
    by_id = {
        str(a["id"]): int(a["cluster"]) for a in read_jsonl(assignments) if a["split"] == split
    }
    missing = [str(r["id"]) for r in records if str(r["id"]) not in by_id]
    if missing:
        raise CodealignError(
            f"{assignments}: no {split} assignment for id '{missing[0]}' "
            f"({len(missing)} missing); rerun the cluster stage"
        )
    return [by_id[str(r["id"])] for r in records]


def generalist_adapter(generalist: Path, base: Path) -> Path:
    """The one adapter of a K = 1 sft dir (the sft_baseline stage's out), checked to be
    trained on `base`; one error line otherwise."""
    return k1_adapter(generalist, model_digest(base)["sha256"], "specialists.init: generalist")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--data-dir", default="data/dedup", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--cluster-dir", default="data/cluster", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--cluster-model", default="models/cluster", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--embed-dir", default="data/embed", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--base", default="models/base_model", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--out", default="models/sft", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--generalist",
    default="models/sft_baseline",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The K = 1 sft dir the specialists start from (specialists.init: generalist).",
)
@click.option("--metrics", default="metrics/sft.json", show_default=True)
@click.option(
    "--live-dir", default="metrics/sft", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--baseline", is_flag=True, help="Train the K = 1 baseline (all data, no clusters).")
def main(
    params_file: str,
    data_dir: Path,
    cluster_dir: Path,
    cluster_model: Path,
    embed_dir: Path,
    base: Path,
    out: Path,
    generalist: Path,
    metrics: str,
    live_dir: Path,
    baseline: bool,
) -> None:
    """Fine-tune the specialists; keep each one's lowest-validation-loss checkpoint."""
    setup_logging()
    params = load_params(params_file)
    train = read_sft_jsonl(data_dir / "train.jsonl")
    validation = read_sft_jsonl(data_dir / "validation.jsonl")
    init_adapter = None
    if not baseline and params["specialists"].init == "generalist":
        init_adapter = generalist_adapter(generalist, base)
    train_data, max_steps, budget = None, -1, {}
    if baseline:
        embedded = load_embeddings(embed_dir)
        vectors = embedded.vectors["train"]
        if params["sft_baseline"].train_data == "seed":
            # Equal steps: the steps the curated set takes, spent on its seed items.
            max_steps = optimizer_steps(len(train), params["sft"])
            budget = {"steps_of": {"curated_items": len(train), "max_steps": max_steps}}
            train = seed_records(train, str(data_dir / "train.jsonl"))
            chosen = {str(r["id"]) for r in train}
            rows = [i for i, rid in enumerate(embedded.ids["train"]) if str(rid) in chosen]
            if len(rows) != len(train):
                raise CodealignError(
                    f"{embed_dir}: {len(rows)} of the {len(train)} seed items of "
                    f"{data_dir / 'train.jsonl'} are embedded; rerun the embed stage"
                )
            vectors, train_data = vectors[rows], "seed"
        # K = 1: the single centroid is the mean question; every item belongs to it.
        centroids = vectors.mean(axis=0, keepdims=True)
        embedder, k_requested = embedded.embedder, 1
        train_labels, validation_labels = [0] * len(train), [0] * len(validation)
    else:
        model = load_cluster_model(cluster_model)
        centroids, embedder, k_requested = model.centroids, model.embedder, model.k_requested
        train_labels = cluster_labels(cluster_dir / "assignments.jsonl", train, "train")
        validation_labels = cluster_labels(
            cluster_dir / "assignments.jsonl", validation, "validation"
        )
    with atomic_path(out) as tmp:
        summary = train_specialists(
            base,
            train,
            validation,
            train_labels,
            validation_labels,
            np.asarray(centroids),
            embedder,
            params["sft"],
            tmp,
            params.train_seed,
            live_root=live_dir,
            checkpoint_stage="sft_baseline" if baseline else "sft",
            k_requested=k_requested,
            init_adapter=init_adapter,
            max_steps=max_steps,
            train_data=train_data,
        )
    for adapter in summary["adapters"]:
        adapter.pop("resumed_from", None)
    if baseline:
        sources = Counter(str(r.get("source")) for r in train)
        summary = {
            "train_data": params["sft_baseline"].train_data,
            "train_sources": dict(sorted(sources.items())),
            **budget,
            **summary,
        }
    write_json(metrics, summary)
    log.info("wrote %s (%d adapters)", out, summary["k"])


if __name__ == "__main__":
    main()
