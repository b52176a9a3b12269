"""Stage `cluster`: K-means on the question embeddings with the top-level `k` and `seed`."""

import logging
from pathlib import Path

import _checkout  # noqa: F401 (before codealign: this checkout's, stages/_checkout.py)
import click

from codealign.command import Command, setup_logging
from codealign.io import atomic_path, write_json, write_jsonl
from codealign.params import load_params
from codealign.specialists.cluster import (
    ClusterModel,
    fit_clusters,
    load_embeddings,
    plot_projection,
    save_cluster_model,
    silhouette,
)

log = logging.getLogger("stages.cluster")


@click.command(cls=Command)
@click.option("--params", "params_file", default="params.yaml", show_default=True)
@click.option(
    "--embed-dir", default="data/embed", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--model-out",
    default="models/cluster",
    show_default=True,
    type=click.Path(path_type=Path),
    help="centroids.npy + manifest.json.",
)
@click.option(
    "--out",
    default="data/cluster",
    show_default=True,
    type=click.Path(path_type=Path),
    help="assignments.jsonl: id, split, cluster, distance.",
)
@click.option("--metrics", default="metrics/cluster.json", show_default=True)
@click.option("--plot", default="metrics/cluster/projection.png", show_default=True)
def main(
    params_file: str, embed_dir: Path, model_out: Path, out: Path, metrics: str, plot: str
) -> None:
    """Fit the clusters, assign train and validation questions, plot a 2-D projection."""
    setup_logging()
    params = load_params(params_file)
    p = params["cluster"]
    embedded = load_embeddings(embed_dir)
    train = embedded.vectors["train"]
    clustering = fit_clusters(train, params.k, params.train_seed, p)
    model = ClusterModel(clustering.centroids, embedded.embedder, params.k, params.train_seed)
    rows = []
    validation_sizes = [0] * model.k
    for split in ("train", "validation"):
        labels, distances = model.assign(embedded.vectors[split])
        for record_id, label, distance in zip(embedded.ids[split], labels, distances, strict=True):
            rows.append(
                {
                    "id": record_id,
                    "split": split,
                    "cluster": int(label),
                    "distance": float(distance),
                }
            )
            if split == "validation":
                validation_sizes[int(label)] += 1
    with atomic_path(model_out) as tmp:
        save_cluster_model(tmp, model)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "assignments.jsonl", rows)
    plot_projection(
        train,
        clustering.labels,
        clustering.centroids,
        plot,
        max_points=p.plot_points,
        seed=params.train_seed,
    )
    summary = {
        "k_requested": params.k,
        "k": model.k,
        "dissolved": clustering.dissolved,
        "train_items": len(train),
        "validation_items": len(embedded.ids["validation"]),
        "sizes": clustering.sizes,
        "validation_sizes": validation_sizes,
        "inertia": clustering.inertia,
        "silhouette": silhouette(train, clustering.labels, p.silhouette_sample, params.train_seed),
    }
    write_json(metrics, summary)
    log.info("clusters: %s", summary)


if __name__ == "__main__":
    main()
