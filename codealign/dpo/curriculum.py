"""Buckets of preference pairs by log-prob distance, pruned and ordered into a curriculum.

Edges are the distance percentiles (default 10, 50, 90; numpy's linear interpolation),
so P edges make P + 1 buckets, numbered from the lowest distance. A pair lies in bucket
`b` when `edges[b-1] <= distance < edges[b]`: a pair exactly on an edge belongs to the
bucket above it.

Pruning, each rule switchable, always on the distance-lowest and -highest buckets:
- `prune_low_incorrect`: in the lowest bucket, drop pairs whose chosen answer does not
  pass every test (best-of-N there often picks the least wrong of wrong answers);
- `prune_high_comment_only`: in the highest bucket, drop pairs whose two programs are
  the same once comments, docstrings and example usage are removed (`strip`).

Order. `order: descending` (the default) trains the highest-distance bucket first. The
distance is how much more likely the reference makes the chosen answer than the
rejected one, per token: a large positive distance is a pair the policy already
separates, an easy one; a negative distance is a pair it gets backwards, the hardest.
Easy-to-hard is the curriculum's premise, so descending is the default; `ascending`
reverses it for the ablation. Curriculum stage 1 is the first bucket trained.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from codealign.dpo.strip import same_program
from codealign.params.dpo import CurriculumParams

log = logging.getLogger(__name__)


def bucket_edges(distances: Sequence[float], percentiles: Sequence[float]) -> list[float]:
    import numpy as np

    if not distances:
        return []
    return [float(e) for e in np.percentile(np.asarray(distances, dtype=float), percentiles)]


def bucket_of(distance: float, edges: Sequence[float]) -> int:
    import bisect

    return bisect.bisect_right(list(edges), distance)


def prune_reason(pair: dict[str, Any], bucket: int, last: int, params: CurriculumParams):
    """Why `pair` is dropped from its bucket, or None to keep it."""
    if params.prune_low_incorrect and bucket == 0 and not pair["chosen_passed"]:
        return "low_bucket_chosen_fails_tests"
    if (
        params.prune_high_comment_only
        and bucket == last
        and same_program(pair["chosen"], pair["rejected"])
    ):
        return "high_bucket_comment_only_difference"
    return None


def build_curriculum(pairs: Sequence[dict[str, Any]], params: CurriculumParams) -> dict[str, Any]:
    """`stages` (lists of pairs, training order), `pruned` pairs with reasons, and a summary."""
    distances = [p["distance"] for p in pairs]
    edges = bucket_edges(distances, params.percentiles)
    last = params.stages - 1
    buckets: list[list[dict]] = [[] for _ in range(params.stages)]
    pruned: list[dict] = []
    before = Counter()
    for pair in pairs:
        bucket = bucket_of(pair["distance"], edges) if edges else 0
        before[bucket] += 1
        reason = prune_reason(pair, bucket, last, params)
        if reason:
            pruned.append({**pair, "bucket": bucket, "reason": reason})
        else:
            buckets[bucket].append({**pair, "bucket": bucket})
    order = list(range(params.stages))
    if params.order == "descending":
        order.reverse()
    # JSON has no infinity: the open ends of the outer buckets are null.
    bounds = [None, *edges, None] if edges else []
    stages, stage_info = [], []
    for number, bucket in enumerate(order, start=1):
        members = sorted(buckets[bucket], key=lambda p: p["pair_id"])
        stages.append([{**p, "stage": number} for p in members])
        stage_info.append(
            {
                "stage": number,
                "bucket": bucket,
                "low": bounds[bucket] if bounds else None,
                "high": bounds[bucket + 1] if bounds else None,
                "pairs": len(members),
                "pairs_before_pruning": before[bucket],
            }
        )
    summary = {
        "pairs_in": len(pairs),
        "pairs_kept": sum(len(s) for s in stages),
        "edges": edges,
        "percentiles": list(params.percentiles),
        "order": params.order,
        "stages": stage_info,
        "pruned": dict(sorted(Counter(p["reason"] for p in pruned).items())),
        "empty_stages": [s["stage"] for s in stage_info if s["pairs"] == 0],
        # pairs whose chosen answer is a reference solution (sample.add_reference: smoke)
        "reference_chosen": sum(bool(p.get("chosen_reference")) for s in stages for p in s),
    }
    if summary["pairs_kept"] == 0:
        log.warning("no pairs left for DPO: every curriculum stage will be skipped")
    return {"stages": stages, "pruned": pruned, "summary": summary}
