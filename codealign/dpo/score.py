"""Scoring sampled completions in the sandbox: score = tests passed / tests total.

Each completion is a whole program (the SFT format answers with the full function; a
fenced block in the answer is taken out first), so it runs as `full_program`; the
prompt's helper definitions, if any, are kept before it.
Each scored record keeps the verdict's status, counts and first failure (`detail`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from codealign.errors import CodealignError
from codealign.evaluation import chat
from codealign.params.dpo import ScoreParams

log = logging.getLogger(__name__)


def score_samples(
    problems: dict[str, Any], samples: Sequence[dict], params: ScoreParams, progress: bool = True
) -> list[dict[str, Any]]:
    """Sample records joined with their verdicts and `score`."""
    from codealign.execution import Limits, Sandbox

    unknown = sorted({s["task_id"] for s in samples} - set(problems))
    if unknown:
        raise CodealignError(f"samples name tasks missing from the pool: {', '.join(unknown[:5])}")
    programs = [{**s, "completion": chat.program(s["completion"])} for s in samples]
    with Sandbox(workers=params.workers, limits=Limits(timeout=params.timeout)) as sandbox:
        verdicts = sandbox.score(problems, programs, full_program=True, progress=progress)
    scored = []
    for sample, verdict in zip(samples, verdicts, strict=True):
        total = verdict["tests_total"]
        scored.append(
            {
                **sample,
                "passed": verdict["passed"],
                "status": verdict["status"],
                "tests_passed": verdict["tests_passed"],
                "tests_total": total,
                "detail": verdict["detail"],
                "score": verdict["tests_passed"] / total if total else 0.0,
            }
        )
    return scored


def score_summary(scored: Sequence[dict]) -> dict[str, Any]:
    by_task: dict[str, list[float]] = {}
    for record in scored:
        by_task.setdefault(record["task_id"], []).append(record["score"])
    return {
        "samples": len(scored),
        "tasks": len(by_task),
        "mean_score": sum(r["score"] for r in scored) / max(1, len(scored)),
        "pass_rate": sum(r["passed"] for r in scored) / max(1, len(scored)),
        "tasks_all_equal": sum(len(set(v)) == 1 for v in by_task.values()),
        "statuses": dict(sorted(Counter(r["status"] for r in scored).items())),
    }
