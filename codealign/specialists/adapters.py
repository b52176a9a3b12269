"""What an sft output directory holds, and who may read it: the one owner of its layout.

Training (`codealign.specialists.sft`, `codealign.edits.lintseq_eval`) writes it and
serving (`codealign.specialists.routing`, `codealign.evaluation.policy`) reads it; both
import this module and serving never imports training.

    models/sft/
      router.json        ROUTER_FILE: format, k, base_model {path, sha256, config_sha256},
                         embedder, dimension, centroids, adapters [{cluster, path, ...}]
      centroids.npy      adapter i serves centroid i
      adapter_<i>/       a PEFT adapter (adapter_config.json, adapter_model.*) and
        codealign.json   ADAPTER_META: {cluster, base_model {path, sha256, config_sha256}}

`model_digest` is the identity adapters are tied to: the sha256 of the base model dir's
files, checked again before an adapter is served over a base model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.io import read_json, save_npy, write_json
from codealign.lm.checkpoints import file_digest
from codealign.specialists.cluster import check_manifest_keys

ROUTER_FORMAT = "codealign-router/1"
ROUTER_FILE = "router.json"
ADAPTER_META = "codealign.json"


def adapter_name(cluster: int) -> str:
    """The PEFT adapter name of specialist `cluster` when several share one base model."""
    return f"cluster_{cluster}"


def model_digest(model_dir: str | os.PathLike) -> dict[str, str]:
    """sha256 of a model dir's files and of its config.json: the identity adapters are tied to."""
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.is_file():
        raise CodealignError(f"{model_dir}: not a model directory (no config.json)")
    return {"sha256": file_digest(model_dir), "config_sha256": file_digest(config)}


def write_adapter_meta(
    adapter_dir: Path, cluster: int, base_dir: str | os.PathLike, base: dict[str, str]
) -> None:
    """Record beside a saved adapter which base model (by sha256) it was trained on."""
    write_json(
        adapter_dir / ADAPTER_META,
        {"cluster": cluster, "base_model": {"path": str(base_dir), **base}},
    )


def write_router(
    out_dir: Path,
    base_dir: str | os.PathLike,
    base: dict[str, str],
    centroids: np.ndarray,
    embedder: dict[str, Any],
    adapters: Sequence[dict[str, Any]],
    k_requested: int | None = None,
    train_data: str | None = None,
) -> None:
    """Write `centroids.npy` and `router.json` (adapter i serves centroid i) into `out_dir`.
    `train_data` (e.g. `seed`) names the data the adapters trained on where it is not the
    curated set; None writes no key, so a curated run's router.json stays as it was."""
    centroids = np.asarray(centroids, dtype=np.float32)
    save_npy(out_dir / "centroids.npy", centroids)
    manifest = {
        "format": ROUTER_FORMAT,
        "k": len(centroids),
        "k_requested": k_requested if k_requested is not None else len(centroids),
        "base_model": {"path": str(base_dir), **base},
        "embedder": embedder,
        "dimension": int(centroids.shape[1]),
        "centroids": "centroids.npy",
        "adapters": list(adapters),
    }
    if train_data is not None:
        manifest["train_data"] = train_data
    write_json(out_dir / ROUTER_FILE, manifest)


def is_router_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / ROUTER_FILE).is_file()


def read_router_manifest(model_dir: str | Path) -> dict[str, Any]:
    """The validated `router.json` of a `models/sft`-style directory."""
    model_dir = Path(model_dir)
    where = model_dir / ROUTER_FILE
    if not model_dir.is_dir():
        raise CodealignError(f"{model_dir}: not a directory")
    if not where.is_file():
        raise CodealignError(f"{model_dir}: no {ROUTER_FILE} (not an sft output directory)")
    manifest = read_json(where)
    check_manifest_keys(
        manifest,
        {
            "format": str,
            "k": int,
            "base_model": dict,
            "embedder": dict,
            "dimension": int,
            "centroids": str,
            "adapters": list,
        },
        str(where),
    )
    if manifest["format"] != ROUTER_FORMAT:
        raise CodealignError(f"{where}: format '{manifest['format']}', expected {ROUTER_FORMAT}")
    check_manifest_keys(
        manifest["base_model"], {"path": str, "sha256": str}, f"{where}: base_model"
    )
    adapters = manifest["adapters"]
    if len(adapters) != manifest["k"] or manifest["k"] < 1:
        raise CodealignError(
            f"{where}: k = {manifest['k']} but {len(adapters)} adapters are listed"
        )
    for i, adapter in enumerate(adapters):
        check_manifest_keys(adapter, {"cluster": int, "path": str}, f"{where}: adapters[{i}]")
        if adapter["cluster"] != i:
            raise CodealignError(f"{where}: adapters[{i}] is for cluster {adapter['cluster']}")
    return manifest


def check_adapter_dir(adapter_dir: Path, base_sha256: str, where: str) -> None:
    """One error line unless `adapter_dir` holds a PEFT adapter trained on that base model."""
    if not adapter_dir.is_dir():
        raise CodealignError(f"{adapter_dir}: adapter directory not found ({where})")
    if not (adapter_dir / "adapter_config.json").is_file():
        raise CodealignError(f"{adapter_dir}: not a PEFT adapter (no adapter_config.json)")
    meta_path = adapter_dir / ADAPTER_META
    if not meta_path.is_file():
        raise CodealignError(f"{adapter_dir}: no {ADAPTER_META}; cannot tell its base model")
    meta = read_json(meta_path)
    trained_on = meta.get("base_model", {}).get("sha256") if isinstance(meta, dict) else None
    if trained_on != base_sha256:
        raise CodealignError(
            f"{adapter_dir}: adapter was trained on another base model "
            f"(sha256 {str(trained_on)[:12]}, the router's is {base_sha256[:12]})"
        )


def k1_adapter(sft_dir: Path, base_sha256: str, role: str) -> Path:
    """The one adapter of a K = 1 sft dir (the sft_baseline stage's out), checked to be
    trained on the base model `base_sha256`; one error line, naming `role`, otherwise."""
    where = f"{sft_dir} ({role})"
    if not Path(sft_dir).is_dir():
        raise CodealignError(f"{where}: not found; run the sft_baseline stage first")
    manifest = read_router_manifest(sft_dir)
    if manifest["k"] != 1:
        raise CodealignError(f"{where}: holds {manifest['k']} adapters, not the K = 1 one")
    adapter = Path(sft_dir) / manifest["adapters"][0]["path"]
    check_adapter_dir(adapter, base_sha256, where)
    return adapter
