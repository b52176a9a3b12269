"""Question embeddings, K-means clusters of them, and the files the router reads.

The `embed` stage writes the embeddings of the curated training and validation
questions (`EmbeddedSplits`: one float32 `.npy` per split, ids and the embedder's
description in `meta.json`). The `cluster` stage fits scikit-learn's `KMeans` with
the top-level `k` and `seed` on the training rows and saves a `ClusterModel`:
`centroids.npy` plus `manifest.json` (embedder, dimension, k). Nothing is pickled,
so routing needs only numpy and the embedder.

Assignment is always "nearest centroid by Euclidean distance", for training items,
validation items and incoming questions alike. With L2-normalised embeddings (the
default of `embed.normalize`) that is also the centroid of highest cosine.

Tiny and empty clusters (policy, `cluster.min_size`): K-means can leave a cluster
with no or very few training items (k close to the number of items, duplicates, or
outliers). One adapter per such cluster would be trained on a handful of examples
and overfit, so after the fit, while some cluster has fewer than `min_size` training
items, the smallest one is dissolved: its centroid is dropped and its items go to
their nearest remaining centroid. The surviving centroids are kept as fitted, so the
training assignment and the routing rule stay the same Voronoi cells. The number of
clusters actually used (`k`) can therefore be smaller than the requested one
(`k_requested`); both are in the manifest and the metrics, and a warning is logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.io import atomic_path, read_json, save_npy
from codealign.params.lm import EmbedParams
from codealign.params.specialists import ClusterParams

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "codealign-clusters/1"
SPLITS = ("train", "validation")


# ---------------------------------------------------------------------------- embeddings


@dataclass(frozen=True)
class EmbeddedSplits:
    """Embeddings of the questions of each split, with their record ids."""

    vectors: dict[str, np.ndarray]
    ids: dict[str, list[str]]
    embedder: dict[str, Any]  # what `embedder_spec` describes

    @property
    def dimension(self) -> int:
        return int(self.vectors["train"].shape[1])


def embedder_spec(params, identity: str) -> dict[str, Any]:
    """The JSON description of an embedder (`EmbedParams` + model identity) a router rebuilds."""
    return {
        "model": params.model,
        "identity": identity,
        "prefix": params.prefix,
        "normalize": params.normalize,
        "max_seq_length": params.max_seq_length,
    }


def embed_params_from_spec(spec: dict[str, Any], where: str):
    """`EmbedParams` for the embedder a manifest describes (device and batch size default)."""
    keys = ("model", "prefix", "normalize", "max_seq_length")
    missing = [key for key in keys if key not in spec]
    if missing:
        raise CodealignError(f"{where}: embedder lacks '{missing[0]}'")
    return EmbedParams.from_dict({key: spec[key] for key in keys}, f"{where}: embedder")


def save_embeddings(out_dir: Path, splits: EmbeddedSplits) -> None:
    """Write `<split>.npy` and `meta.json` into a new directory `out_dir`."""
    from codealign.io import write_json

    out_dir.mkdir(parents=True)
    for split, vectors in splits.vectors.items():
        save_npy(out_dir / f"{split}.npy", np.ascontiguousarray(vectors, dtype=np.float32))
    meta = {
        "embedder": splits.embedder,
        "dimension": splits.dimension,
        "ids": {split: [str(i) for i in ids] for split, ids in splits.ids.items()},
    }
    write_json(out_dir / "meta.json", meta)


def load_embeddings(directory: str | os.PathLike) -> EmbeddedSplits:
    """Read what `save_embeddings` wrote, checking that ids and rows agree."""
    directory = Path(directory)
    meta = read_json(directory / "meta.json")
    where = directory / "meta.json"
    if not isinstance(meta, dict) or not {"embedder", "dimension", "ids"} <= set(meta):
        raise CodealignError(f"{where}: expected keys embedder, dimension, ids")
    vectors, ids = {}, {}
    for split in SPLITS:
        path = directory / f"{split}.npy"
        if not path.is_file():
            raise CodealignError(f"{path}: file not found")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CodealignError(f"{path}: not a numpy array file: {exc}") from None
        split_ids = meta["ids"].get(split)
        if array.ndim != 2 or not isinstance(split_ids, list) or len(split_ids) != len(array):
            raise CodealignError(
                f"{path}: {array.shape} rows do not match the {split} ids listed in {where}"
            )
        if array.shape[1] != meta["dimension"] and len(array):
            raise CodealignError(
                f"{path}: dimension {array.shape[1]}, {where} says {meta['dimension']}"
            )
        vectors[split] = array.astype(np.float32, copy=False)
        ids[split] = split_ids
    return EmbeddedSplits(vectors, ids, meta["embedder"])


# ---------------------------------------------------------------------------- clustering


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid (Euclidean) for each row, and the distance to it."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != centroids.shape[1]:
        raise CodealignError(
            f"embeddings have dimension {vectors.shape[-1]}, the centroids {centroids.shape[1]}"
        )
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, in float64 so ties between equal centroids are stable.
    x = vectors.astype(np.float64)
    c = centroids.astype(np.float64)
    squared = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    labels = squared.argmin(axis=1)
    distances = np.sqrt(np.maximum(squared[np.arange(len(x)), labels], 0.0))
    return labels.astype(np.int64), distances.astype(np.float32)


def cosine_margins(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Per row, its cosine similarity to the most similar centroid minus that to the
    second most similar (>= 0; small: the question lies between two clusters). With one
    centroid there is no second: every margin is +inf."""
    vectors = np.asarray(vectors, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[1] != c.shape[1]:
        raise CodealignError(
            f"embeddings have dimension {vectors.shape[-1]}, the centroids {c.shape[1]}"
        )
    if len(c) < 2:
        return np.full(len(vectors), np.inf)
    x = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    top2 = -np.sort(-(x @ c.T), axis=1)[:, :2]
    return top2[:, 0] - top2[:, 1]


@dataclass(frozen=True)
class Clustering:
    """The result of `fit_clusters` on the training embeddings."""

    centroids: np.ndarray  # float32 [k, dim], only the clusters that survived the policy
    labels: np.ndarray  # int64 [n], index into `centroids`
    k_requested: int
    dissolved: list[int] = field(default_factory=list)  # K-means cluster ids dropped
    inertia: float = 0.0  # sum of squared distances to the assigned centroid

    @property
    def k(self) -> int:
        return int(len(self.centroids))

    @property
    def sizes(self) -> list[int]:
        return np.bincount(self.labels, minlength=self.k).astype(int).tolist()


def check_k(k: Any, n_items: int, where: str = "training questions") -> int:
    """`k` as an int, or one error line naming `k` when it is not positive or exceeds the data."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise CodealignError(f"k must be a positive integer, got {k!r}")
    if k > n_items:
        raise CodealignError(
            f"k = {k} is larger than the number of {where} ({n_items}); lower k or add data"
        )
    return k


def fit_clusters(vectors: np.ndarray, k: int, seed: int, params: ClusterParams) -> Clustering:
    """K-means with `k` clusters on `vectors`, then the tiny-cluster policy (module docstring)."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    vectors = np.asarray(vectors, dtype=np.float32)
    check_k(k, len(vectors))
    kmeans = KMeans(n_clusters=k, n_init=params.n_init, max_iter=params.max_iter, random_state=seed)
    with warnings.catch_warnings():
        # Fewer distinct points than k leaves empty clusters; the policy below handles them.
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans.fit(vectors.astype(np.float64))
    centroids = kmeans.cluster_centers_.astype(np.float32)
    keep = list(range(k))
    labels, _ = nearest_centroid(vectors, centroids)
    dissolved: list[int] = []
    while len(keep) > 1:
        sizes = np.bincount(labels, minlength=len(keep))
        smallest = int(sizes.argmin())
        if sizes[smallest] >= params.min_size:
            break
        dissolved.append(keep.pop(smallest))
        labels, _ = nearest_centroid(vectors, centroids[keep])
    if dissolved:
        log.warning(
            "dissolved %d of %d clusters with fewer than cluster.min_size=%d training items; "
            "%d clusters remain",
            len(dissolved),
            k,
            params.min_size,
            len(keep),
        )
    kept = centroids[keep]
    labels, distances = nearest_centroid(vectors, kept)
    return Clustering(
        centroids=kept,
        labels=labels,
        k_requested=k,
        dissolved=sorted(dissolved),
        inertia=float((distances.astype(np.float64) ** 2).sum()),
    )


def silhouette(vectors: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> float | None:
    """Mean silhouette (Euclidean) on at most `sample` points; None when undefined (k < 2)."""
    from sklearn.metrics import silhouette_score

    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(vectors):
        return None
    size = min(sample, len(vectors))
    return float(
        silhouette_score(vectors, labels, sample_size=size, random_state=seed)
        if size < len(vectors)
        else silhouette_score(vectors, labels)
    )


def plot_projection(
    vectors: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray,
    path: str | os.PathLike,
    *,
    max_points: int = 5000,
    seed: int = 0,
    title: str = "",
) -> None:
    """A PCA projection of the embeddings to 2-D, coloured by cluster, centroids marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    rows = np.arange(len(vectors))
    if len(rows) > max_points:
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))
    # PCA is fitted on the points and the centroids together so both share the axes.
    stacked = np.concatenate([vectors[rows], centroids]).astype(np.float64)
    n_components = min(2, stacked.shape[0], stacked.shape[1])
    projected = PCA(n_components=n_components, random_state=seed).fit_transform(stacked)
    if projected.shape[1] < 2:
        projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
    points, marks = projected[: len(rows)], projected[len(rows) :]
    k = len(centroids)
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for cluster in range(k):
        mask = labels[rows] == cluster
        color = cmap(cluster % cmap.N)
        ax.scatter(
            points[mask, 0], points[mask, 1], s=6, alpha=0.6, color=color, label=str(cluster)
        )
        ax.scatter(*marks[cluster], marker="X", s=90, color=color, edgecolors="black")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or f"questions by cluster (k = {k})")
    if k <= 20:
        ax.legend(title="cluster", fontsize="small", markerscale=2, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        # Fixed metadata keeps the PNG byte-identical across runs of the same data.
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ClusterModel:
    """Centroids plus what a router needs to embed questions the way they were clustered."""

    centroids: np.ndarray
    embedder: dict[str, Any]
    k_requested: int
    seed: int

    @property
    def k(self) -> int:
        return int(len(self.centroids))

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    def assign(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return nearest_centroid(vectors, self.centroids)

    def manifest(self, centroids_file: str = "centroids.npy") -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "embedder": self.embedder,
            "dimension": self.dimension,
            "k": self.k,
            "k_requested": self.k_requested,
            "seed": self.seed,
            "metric": "euclidean",
            "centroids": centroids_file,
        }


def save_cluster_model(out_dir: Path, model: ClusterModel) -> None:
    """Write `centroids.npy` and `manifest.json` into a new directory `out_dir`."""
    from codealign.io import write_json

    out_dir.mkdir(parents=True)
    save_npy(out_dir / "centroids.npy", np.ascontiguousarray(model.centroids, dtype=np.float32))
    write_json(out_dir / "manifest.json", model.manifest())


def read_centroids(path: Path, k: int, dimension: int, where: str) -> np.ndarray:
    """Load a centroids file without pickle and check it has `k` rows of `dimension`."""
    if not path.is_file():
        raise CodealignError(f"{where}: centroids file {path} not found")
    try:
        centroids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CodealignError(f"{path}: not a numpy array file: {exc}") from None
    if centroids.shape != (k, dimension) or not np.issubdtype(centroids.dtype, np.floating):
        raise CodealignError(
            f"{path}: centroids of shape {centroids.shape}, {where} says k = {k}, "
            f"dimension = {dimension}"
        )
    if not np.isfinite(centroids).all():
        raise CodealignError(f"{path}: centroids contain NaN or infinity")
    return centroids.astype(np.float32)


def check_manifest_keys(manifest: Any, keys: dict[str, type], where: str) -> None:
    """One error line for a manifest that is not an object or lacks a typed key."""
    if not isinstance(manifest, dict):
        raise CodealignError(f"{where}: expected a JSON object")
    for key, kind in keys.items():
        value = manifest.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CodealignError(f"{where}: missing or invalid '{key}'")


def load_cluster_model(directory: str | os.PathLike) -> ClusterModel:
    """Read what `save_cluster_model` wrote; one error line for a corrupt or mismatched one."""
    directory = Path(directory)
    where = directory / "manifest.json"
    manifest = read_json(where)
    check_manifest_keys(
        manifest,
        {"format": str, "embedder": dict, "dimension": int, "k": int, "centroids": str},
        str(where),
    )
    if manifest["format"] != MANIFEST_FORMAT:
        raise CodealignError(f"{where}: format '{manifest['format']}', expected {MANIFEST_FORMAT}")
    centroids = read_centroids(
        directory / manifest["centroids"], manifest["k"], manifest["dimension"], str(where)
    )
    return ClusterModel(
        centroids=centroids,
        embedder=manifest["embedder"],
        k_requested=int(manifest.get("k_requested", manifest["k"])),
        seed=int(manifest.get("seed", 0)),
    )
