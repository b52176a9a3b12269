"""The headline metrics: a few numbers per stage, the only files DVC reads as metrics.

`dvc metrics show` prints one row per metrics file and one column per key of all of them
together, and `dvc exp show` prints the same columns per experiment; the stages' own
metrics files (hundreds of keys, digests, per-cluster and per-step lists) are outs that
DVC does not read as metrics. The `report` stage writes `metrics/headline/` from them:

- `<benchmark>.json` (from `evaluate.json`): `pass@1.<model>` for base, k1 and routed
  (the DPO models, which `evaluate_dpo` scores, are in `dpo.json`);
- `dpo.json` (`dpo_compare.json`, `curriculum.json`): `pass@1.curriculum`,
  `pass@1.shuffled`, `difference` (curriculum − shuffled, final) and `pairs` (kept). The
  final models on the final benchmarks (`final_evaluation`, the mean over benchmarks
  where there are several); a `dpo_compare.json` without it gives its curves' last
  points (the stage-boundary benchmarks);
- `lintseq.json` (`lintseq_eval.json`): `difference`, pass@1 of edits − code;
- `dedup.json`: `records` (kept) and `removed`;
- `dataset.json` (`dataset_metrics.json`): `records` and `question_mtld` of the curated set;
- `times.json` (`stage_times.json`, which is not a stage out): `total_s`, the wall time.

Keys are shared across files where they mean the same thing (`pass@1.*`, `difference`,
`records`), so the whole table stays within 200 characters, and no key is named
`error` (DVC takes such a key for a failure to load the file). A file whose source is
missing is not written, as the report says "Not run" for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import atomic_path, read_json, write_json
from codealign.report.common import NUMBER, need


def _load(metrics_dir: Path, name: str) -> tuple[Any, str] | None:
    path = metrics_dir / name
    return (read_json(path), str(path)) if path.is_file() else None


def headline_evaluate(data: Any, where: str) -> dict[str, dict[str, Any]]:
    """`{benchmark: {"pass@1": {model: pass@1}}}` from evaluate.json."""
    if not isinstance(data, dict) or not data:
        raise CodealignError(f"{where}: expected an object of benchmarks, got {data!r:.40}")
    out = {}
    for bench in sorted(data):
        models = need(need(data, bench, where, dict), "models", f"{where}: {bench}", dict)
        out[bench] = {
            "pass@1": {
                model: need(scores, "pass@1", f"{where}: {bench}.models.{model}", NUMBER)
                for model, scores in models.items()
                if model in HEADLINE_MODELS
            }
        }
    return out


HEADLINE_MODELS = ("base", "k1", "routed")  # DPO's models (evaluate_dpo) go to dpo.json


def headline_lintseq(data: Any, where: str) -> dict[str, Any]:
    # Only the difference: two more pass@1 columns would not fit 200 characters.
    code = need(need(data, "code", where, dict), "pass@1", f"{where}: code", NUMBER)
    edits = need(need(data, "edits", where, dict), "pass@1", f"{where}: edits", NUMBER)
    return {"difference": edits - code}


def headline_dpo(compare: Any, where: str, curriculum: Any, where_curriculum: str) -> dict:
    finals = compare.get("final_evaluation") if isinstance(compare, dict) else None
    if finals:
        rows = [need(finals, bench, f"{where}: final_evaluation", dict) for bench in sorted(finals)]
        at = f"{where}: final_evaluation"

        def mean(key: str) -> float:
            return sum(float(need(row, key, at, NUMBER)) for row in rows) / len(rows)

        cur, shuf = mean("curriculum_pass@1"), mean("shuffled_pass@1")
        diff = mean("mean_difference")
    else:
        cur = need(compare, "final_curriculum_pass@1", where, NUMBER)
        shuf = need(compare, "final_shuffled_pass@1", where, NUMBER)
        diff = need(compare, "final_difference", where, NUMBER)
    out: dict[str, Any] = {
        "difference": diff,
        "pass@1": {"curriculum": cur, "shuffled": shuf},
    }
    if curriculum is not None:
        out["pairs"] = need(curriculum, "pairs_kept", where_curriculum, int)
    return out


def headline_dedup(data: Any, where: str) -> dict[str, Any]:
    before = need(data, "records_before", where, int)
    after = need(data, "records_after", where, int)
    return {"records": after, "removed": before - after}


def headline_dataset(data: Any, where: str) -> dict[str, Any]:
    curated = need(data, "curated", where, dict)
    inner = f"{where}: curated"
    return {
        "question_mtld": need(curated, "question_mtld", inner, NUMBER),
        "records": need(curated, "data_points", inner, int),
    }


def headline_stage_times(data: Any, where: str) -> dict[str, Any]:
    return {"total_s": need(data, "total_s", where, NUMBER)}


def headlines(metrics_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """File name -> headline, for every source file present in `metrics_dir`."""
    metrics_dir = Path(metrics_dir)
    out: dict[str, dict[str, Any]] = {}
    if loaded := _load(metrics_dir, "evaluate.json"):
        for bench, headline in headline_evaluate(*loaded).items():
            out[f"{bench}.json"] = headline
    if loaded := _load(metrics_dir, "lintseq_eval.json"):
        out["lintseq.json"] = headline_lintseq(*loaded)
    if loaded := _load(metrics_dir, "dpo_compare.json"):
        curriculum = _load(metrics_dir, "curriculum.json") or (None, "")
        out["dpo.json"] = headline_dpo(*loaded, *curriculum)
    if loaded := _load(metrics_dir, "dedup.json"):
        out["dedup.json"] = headline_dedup(*loaded)
    if loaded := _load(metrics_dir, "dataset_metrics.json"):
        out["dataset.json"] = headline_dataset(*loaded)
    if loaded := _load(metrics_dir, "stage_times.json"):
        out["times.json"] = headline_stage_times(*loaded)
    return out


def write_headlines(out_dir: str | os.PathLike, found: dict[str, dict[str, Any]]) -> list[str]:
    """Replace `out_dir` with one JSON file per headline of `headlines()`; return the names."""
    with atomic_path(Path(out_dir)) as tmp:
        tmp.mkdir()
        for name, headline in sorted(found.items()):
            write_json(tmp / name, headline)
    return sorted(found)
