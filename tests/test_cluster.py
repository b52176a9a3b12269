"""Clusters of question embeddings: k guards, the tiny-cluster policy, files without pickle."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.errors import CodealignError
from codealign.params.specialists import ClusterParams
from codealign.specialists.cluster import (
    ClusterModel,
    EmbeddedSplits,
    check_k,
    fit_clusters,
    load_cluster_model,
    load_embeddings,
    nearest_centroid,
    save_cluster_model,
    save_embeddings,
)

ROOT = Path(__file__).resolve().parents[1]
EMBEDDER = {
    "model": "m",
    "identity": "dir:x",
    "prefix": "",
    "normalize": True,
    "max_seq_length": None,
}


def blobs(n_per: int, centers: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centers, dim)) * 5
    points = np.concatenate([m + rng.normal(scale=0.1, size=(n_per, dim)) for m in means])
    return points.astype(np.float32)


def test_k_guards_name_k():
    with pytest.raises(CodealignError, match=r"^k must be a positive integer, got 0$"):
        check_k(0, 10)
    with pytest.raises(CodealignError, match=r"^k must be a positive integer, got -2$"):
        fit_clusters(blobs(3, 2), -2, 0, ClusterParams())
    with pytest.raises(CodealignError, match=r"^k = 7 is larger than the number of .* \(6\)"):
        fit_clusters(blobs(3, 2), 7, 0, ClusterParams())


def test_kmeans_finds_separated_groups_and_assigns_by_nearest_centroid():
    points = blobs(20, 3)
    clustering = fit_clusters(points, 3, seed=0, params=ClusterParams(min_size=2, n_init=3))
    assert clustering.k == 3 and sorted(clustering.sizes) == [20, 20, 20]
    labels, distances = nearest_centroid(points, clustering.centroids)
    assert (labels == clustering.labels).all() and (distances < 1.0).all()
    # Each blob is one cluster.
    assert all(len(set(clustering.labels[i : i + 20])) == 1 for i in (0, 20, 40))


def test_tiny_and_empty_clusters_are_dissolved_into_their_neighbours():
    # Two groups of 10 and one outlier; with k = 3 the outlier gets a cluster of its own.
    points = np.concatenate([blobs(10, 2), np.full((1, 8), 40.0, dtype=np.float32)])
    kept = fit_clusters(points, 3, seed=0, params=ClusterParams(min_size=1, n_init=3))
    assert kept.k == 3 and sorted(kept.sizes) == [1, 10, 10]
    merged = fit_clusters(points, 3, seed=0, params=ClusterParams(min_size=2, n_init=3))
    assert merged.k == 2 and merged.k_requested == 3 and len(merged.dissolved) == 1
    assert sorted(merged.sizes) == [10, 11]
    assert (nearest_centroid(points, merged.centroids)[0] == merged.labels).all()
    # Three distinct points and k = 3 over six rows: duplicates never leave a cluster empty.
    dupes = np.repeat(blobs(1, 3), 2, axis=0)
    result = fit_clusters(dupes, 3, seed=0, params=ClusterParams(min_size=2, n_init=2))
    assert min(result.sizes) >= 2


def test_cluster_model_round_trip_without_pickle(tmp_path):
    centroids = blobs(1, 4)
    save_cluster_model(tmp_path / "m", ClusterModel(centroids, EMBEDDER, 5, seed=3))
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["k"] == 4 and manifest["k_requested"] == 5 and manifest["dimension"] == 8
    assert manifest["embedder"] == EMBEDDER and manifest["centroids"] == "centroids.npy"
    raw = np.load(tmp_path / "m" / "centroids.npy", allow_pickle=False)
    np.testing.assert_array_equal(raw, centroids)
    loaded = load_cluster_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.centroids, centroids)
    assert (loaded.assign(centroids)[0] == np.arange(4)).all()


def test_corrupt_or_mismatched_cluster_manifest_is_one_line(tmp_path):
    save_cluster_model(tmp_path / "m", ClusterModel(blobs(1, 4), EMBEDDER, 4, seed=0))
    manifest_path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "k": 5}))
    with pytest.raises(CodealignError, match=r"centroids of shape \(4, 8\), .* k = 5"):
        load_cluster_model(tmp_path / "m")
    manifest_path.write_text("{not json")
    with pytest.raises(CodealignError, match=r"manifest.json:1: invalid JSON"):
        load_cluster_model(tmp_path / "m")
    manifest_path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "dimension"}))
    with pytest.raises(CodealignError, match=r"missing or invalid 'dimension'"):
        load_cluster_model(tmp_path / "m")


def _embed_dir(path: Path, n_train: int = 30, n_val: int = 6) -> Path:
    points = blobs((n_train + n_val) // 3, 3)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(points))
    train, val = points[order[:n_train]], points[order[n_train : n_train + n_val]]
    ids = {
        "train": [f"t{i}" for i in range(len(train))],
        "validation": [f"v{i}" for i in range(len(val))],
    }
    save_embeddings(path, EmbeddedSplits({"train": train, "validation": val}, ids, EMBEDDER))
    return path


def _params(tmp_path: Path, k: int) -> Path:
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw["k"] = k
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run_cluster(tmp_path: Path, k: int):
    args = [
        "--params", str(_params(tmp_path, k)),
        "--embed-dir", str(tmp_path / "embed"),
        "--model-out", str(tmp_path / "model"),
        "--out", str(tmp_path / "cluster"),
        "--metrics", str(tmp_path / "cluster.json"),
        "--plot", str(tmp_path / "plot" / "projection.png"),
    ]  # fmt: skip
    return CliRunner().invoke(stage("cluster"), args)


def test_cluster_stage_writes_model_assignments_metrics_and_plot(tmp_path):
    _embed_dir(tmp_path / "embed")
    assert load_embeddings(tmp_path / "embed").dimension == 8
    result = _run_cluster(tmp_path, 3)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "cluster.json").read_text())
    assert metrics["k"] == 3 and sum(metrics["sizes"]) == 30
    assert sum(metrics["validation_sizes"]) == 6
    assert 0.5 < metrics["silhouette"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "cluster" / "assignments.jsonl").open()]
    assert {r["split"] for r in rows} == {"train", "validation"} and len(rows) == 36
    assert (tmp_path / "plot" / "projection.png").read_bytes()[:4] == b"\x89PNG"
    assert load_cluster_model(tmp_path / "model").k == 3


@pytest.mark.parametrize("k, message", [(0, "k must be an integer >= 1, got 0"), (31, "k = 31")])
def test_cluster_stage_bad_k_is_one_line_and_writes_nothing(tmp_path, k, message):
    _embed_dir(tmp_path / "embed")
    result = _run_cluster(tmp_path, k)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "model").exists() and not (tmp_path / "cluster").exists()


@pytest.mark.slow
def test_embed_stage_embeds_both_splits_and_reuses_the_cache(tmp_path):
    from tiny_specialists import sft_records

    data = tmp_path / "dedup"
    data.mkdir()
    records = sft_records(5)
    for split, rows in {"train": records[:8], "validation": records[8:]}.items():
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        "--params", str(_params(tmp_path, 2)),
        "--data-dir", str(data),
        "--out", str(tmp_path / "embed"),
        "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    result = CliRunner().invoke(stage("embed"), args)
    assert result.exit_code == 0, result.output
    embedded = load_embeddings(tmp_path / "embed")
    assert embedded.vectors["train"].shape == (8, 384)
    assert embedded.ids["validation"] == [r["id"] for r in records[8:]]
    assert embedded.embedder["model"] == "bundled:all-MiniLM-L6-v2"
    assert embedded.embedder["identity"].startswith("dir:")
    np.testing.assert_allclose(np.linalg.norm(embedded.vectors["train"], axis=1), 1, atol=1e-5)
