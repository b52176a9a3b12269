"""Training on edits against training on programs: the LintSeq pass@k comparison.

Two K = 1 LoRA adapters over the base model, trained on the same records (the lintseq
stage's: each program's edit sequence 0 and its code) with the same `sft` params and
the same number of optimizer steps (the code run's): one answers with the whole
program (`sft.target: code`), the other with the program as a sequence of diffs
(`sft.target: edits`), whatever `sft.target` itself says. Each model then samples `n`
answers per benchmark task (tinyeval by default) at one temperature and the same token
budget, asked in chat format as `codealign.evaluation.evaluate.benchmark_questions` asks the
specialists.

Decoding. The code model's program is its answer's first fenced block or the whole
answer (`codealign.specialists.routing.extract_code`). The edits model's diffs are applied in order
to the empty program (`codealign.edits.lintseq.decode_target`). An answer with no diff, a
diff that does not parse, or one that does not apply (context that does not match, a
hunk outside the program, an answer cut off mid-diff by the token budget) gets the
verdict status `edit_failed` without reaching the sandbox: a failure for pass@k, and
counted apart, by reason, in the metrics. Never an exception.

Scoring. Decoded programs run in the sandbox as full programs, as
`codealign.evaluation.evaluate.RoutedScorer` scores the specialists; pass@k is the unbiased
estimator over the n samples of each task, for every k from 1 to n (the plot) and for
the reported `ks`.

Both adapters are written as `models/sft`-style directories (`router.json`, K = 1), so
`codealign generate --model models/lintseq_eval/edits` serves them; their manifests name
no embedder, since one adapter routes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.evaluation.evaluate import BENCHMARKS
from codealign.params import Section, param, register
from codealign.specialists.sft import TARGETS, SFTParams, answer_of, to_conversation

log = logging.getLogger(__name__)

EDIT_FAILED = "edit_failed"
# One adapter routes nothing: the manifest's embedder is never loaded (Router, k = 1).
NO_EMBEDDER = {"model": "none", "identity": None, "note": "K = 1: no routing"}
RECORD_FIELDS = {"id": (str, int), "question": str, "code": str, "target": str, "sample": int}


@register("lintseq_eval")
@dataclass(frozen=True)
class LintseqEvalParams(Section):
    """Knobs of the lintseq_eval stage (edits against programs, pass@k on one benchmark)."""

    benchmark: str = param(
        "tinyeval", choices=BENCHMARKS, doc="tasks to sample on (tinyeval is empty with real data)"
    )
    limit: int = param(100, ge=0, doc="first N tasks of the benchmark (0: all)")
    n: int = param(50, ge=1, doc="samples per task and model; at least the largest k")
    ks: tuple[int, ...] = param((1, 10, 50), ge=1, doc="the pass@k reported in the metrics")
    temperature: float = param(0.8, gt=0, le=2, doc="sampling temperature of both models")
    max_new_tokens: int = param(
        192,
        ge=1,
        doc="answer budget of both models; an edit sequence spends ~1.6x the tokens of its "
        "program, and one cut off by the budget is edit_failed",
    )
    batch_size: int = param(64, ge=1, doc="answers generated per forward pass")
    workers: int = param(2, ge=1, doc="sandbox worker processes")
    timeout: float = param(5.0, gt=0, doc="seconds per sample in the sandbox")
    epochs: float | None = param(
        None, gt=0, doc="passes over the records for the code run (null: sft.epochs)"
    )

    def validate(self, prefix: str) -> None:
        if not self.ks:
            raise CodealignError(f"{prefix}.ks must name at least one k")
        if self.n < max(self.ks):
            raise CodealignError(
                f"{prefix}.n must be >= the largest of {prefix}.ks ({max(self.ks)}), got {self.n}"
            )


# ---------------------------------------------------------------------------- data


def read_edit_records(path: str | Path) -> list[dict[str, Any]]:
    """Each program's first edit sequence (sample 0) of a lintseq split, in file order.

    Every record must carry id, question, code, target and sample; errors name `file:line`.
    """
    from codealign.io import iter_jsonl, require_fields

    records, seen = [], set()
    for lineno, record in enumerate(iter_jsonl(path), start=1):
        require_fields(record, RECORD_FIELDS, f"{path}:{lineno}")
        if record["sample"] == 0 and str(record["id"]) not in seen:
            seen.add(str(record["id"]))
            records.append(record)
    return records


def answer_lengths(
    base_dir: str | Path, records: Sequence[dict[str, Any]], target: str, max_length: int
) -> dict[str, Any]:
    """Mean tokens of the answers under `target`, and how many examples exceed max_length."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    answers = [answer_of(r, target) for r in records]
    answer_tokens = [len(ids) for ids in tokenizer(answers, add_special_tokens=False)["input_ids"]]
    truncated = 0
    for record in records:
        conversation = to_conversation(record, target)
        text = tokenizer.apply_chat_template(
            conversation["prompt"] + conversation["completion"], tokenize=False
        )
        truncated += len(tokenizer(text, add_special_tokens=False)["input_ids"]) > max_length
    return {
        "mean_answer_tokens": round(float(np.mean(answer_tokens)), 2) if records else None,
        "truncated_train_items": int(truncated),
    }


# ---------------------------------------------------------------------------- training


def train_pair(
    base_dir: str | Path,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    sft: SFTParams,
    out_dir: Path,
    seed: int,
    *,
    live_dir: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Train `out_dir/code` (sft.epochs), then `out_dir/edits` for as many optimizer steps.

    `out_dir` must not exist. Returns each run's adapter metrics (steps, best_step,
    eval_loss, ...) by target.
    """
    from codealign.specialists.sft import train_specialists

    if not train:
        raise CodealignError("no training records (is data/lintseq empty?)")
    out_dir.mkdir(parents=True)
    runs: dict[str, dict[str, Any]] = {}
    steps = -1  # the code run's count, once known
    for target in TARGETS:  # code first: its step count is the edits run's budget
        log.info("training the %s adapter on %d records", target, len(train))
        summary = train_specialists(
            base_dir,
            train,
            validation,
            [0] * len(train),
            [0] * len(validation),
            np.zeros((1, 1), dtype=np.float32),
            NO_EMBEDDER,
            dataclasses.replace(sft, target=target),
            out_dir / target,
            seed,
            live_root=live_dir / target if live_dir is not None else None,
            checkpoint_stage=f"lintseq_eval_{target}",
            k_requested=1,
            max_steps=steps,
        )
        adapter = summary["adapters"][0]
        adapter.pop("resumed_from", None)
        adapter.pop("cluster", None)
        steps = adapter["steps"] if steps < 0 else steps
        runs[target] = adapter
    if runs["code"]["steps"] != runs["edits"]["steps"]:
        raise AssertionError(f"unequal steps: {runs['code']['steps']} vs {runs['edits']['steps']}")
    return runs


# ---------------------------------------------------------------------------- decoding


def decode_answers(
    task_ids: Sequence[str],
    answers: Sequence[Sequence[str]],
    target: str,
    separator: str,
) -> list[dict[str, Any]]:
    """One sample record per answer: `task_id, completion_id, answer, completion, decode,
    reason, edits`. `decode` is ok (completion is the program) or edit_failed (None)."""
    from codealign.edits.lintseq import decode_target
    from codealign.specialists.routing import extract_code

    samples = []
    for task_id, texts in zip(task_ids, answers, strict=True):
        for j, text in enumerate(texts):
            if target == "code":
                status, program, reason, edits = "ok", extract_code(text), "", None
            else:
                decoded = decode_target(text, separator)
                status, program = decoded.status, decoded.program
                reason, edits = decoded.reason, decoded.edits
            samples.append(
                {
                    "task_id": task_id,
                    "completion_id": j,
                    "answer": text,
                    "completion": program,
                    "decode": status,
                    "reason": reason,
                    "edits": edits,
                }
            )
    return samples


def score_samples(sandbox: Any, problems: Mapping[str, Any], samples: Sequence[dict]) -> list:
    """Verdicts in sample order: decoded programs judged in `sandbox` as full programs,
    the rest `edit_failed` with the decoding's reason as detail."""
    decoded = [s for s in samples if s["decode"] == "ok"]
    judged = iter(())
    if decoded:  # the sandbox refuses an empty batch; every answer may have failed to decode
        judged = iter(sandbox.score(problems, decoded, full_program=True, progress=True))
    verdicts = []
    for sample in samples:
        if sample["decode"] == "ok":
            verdicts.append(next(judged))
            continue
        verdicts.append(
            {
                "task_id": sample["task_id"],
                "completion_id": sample["completion_id"],
                "passed": False,
                "status": EDIT_FAILED,
                "tests_passed": 0,
                "tests_total": problems[sample["task_id"]].tests_total,
                "detail": sample["reason"],
            }
        )
    return verdicts


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def reason_kind(reason: str) -> str:
    """A decoding failure without its numbers and quoted text, so that alike ones count
    together: 'edit N: hunk N: context mismatch at line N: expected '…', found '…''."""
    return re.sub(r"\d+", "N", _QUOTED.sub("'…'", reason))


# ---------------------------------------------------------------------------- metrics


def pass_at_k_curve(verdicts: Sequence[dict], n: int) -> dict[int, float]:
    """Unbiased pass@k for every k from 1 to n (each task has n samples)."""
    from codealign.passk import pass_at_k

    scores = pass_at_k(verdicts, range(1, n + 1))
    return {int(key.removeprefix("pass@")): value for key, value in scores.items()}


def summarize(
    samples: Sequence[dict], verdicts: Sequence[dict], ks: Sequence[int], n: int
) -> tuple[dict[str, Any], dict[int, float]]:
    """(metrics of one model, its pass@k curve). pass@k at `ks`, verdict statuses, and the
    decoding failures: how many, their share of the samples, and their reasons by kind."""
    from codealign.evaluation.evaluate import solved_share, status_counts

    curve = pass_at_k_curve(verdicts, n)
    missing = [k for k in ks if k not in curve]
    if missing:
        raise CodealignError(f"pass@{missing[0]} needs {missing[0]} samples per task, got fewer")
    failed = [s for s in samples if s["decode"] != "ok"]
    edits = [s["edits"] for s in samples if s["decode"] == "ok" and s["edits"] is not None]
    reasons = Counter(reason_kind(s["reason"]) for s in failed)
    metrics = {
        **{f"pass@{k}": curve[k] for k in sorted(set(ks))},
        "samples": len(samples),
        "statuses": status_counts(verdicts),
        EDIT_FAILED: len(failed),
        f"{EDIT_FAILED}_share": len(failed) / len(samples) if samples else 0.0,
        f"{EDIT_FAILED}_reasons": dict(reasons.most_common()),
        "mean_edits_decoded": round(float(np.mean(edits)), 3) if edits else None,
        **solved_share(verdicts),
    }
    return metrics, curve


def plot_pass_at_k(curves: Mapping[str, Mapping[int, float]], path: str | Path, title: str) -> None:
    """pass@k against k (log scale), one line per model, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from codealign.io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        for name, curve in curves.items():
            ks = sorted(curve)
            ax.plot(ks, [curve[k] for k in ks], marker="o", markersize=3, label=name)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("k (samples)")
        ax.set_ylabel("pass@k")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="trained on")
        ax.set_title(title)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            # No "Software" stamp: the same curves give the same bytes.
            fig.savefig(tmp, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------- evaluation


@dataclass
class ModelResult:
    """One model's samples, verdicts, metrics and pass@k curve."""

    samples: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    metrics: dict[str, Any]
    curve: dict[int, float]


def evaluate_pair(
    models_dir: Path,
    benchmark: Any,
    params: LintseqEvalParams,
    separator: str,
    seed: int,
) -> dict[str, ModelResult]:
    """Sample, decode and score `models_dir/{code,edits}` on `benchmark`, one warm sandbox."""
    from codealign.evaluation.evaluate import benchmark_questions
    from codealign.execution import Limits, Sandbox
    from codealign.problems import problem_from_record
    from codealign.specialists.routing import Router

    questions = benchmark_questions(benchmark)
    task_ids = [r["task_id"] for r in benchmark.records]
    problems = {
        r["task_id"]: problem_from_record(r, f"{benchmark.name}:{i + 1}")
        for i, r in enumerate(benchmark.records)
    }
    results = {}
    with Sandbox(workers=params.workers, limits=Limits(timeout=params.timeout)) as sandbox:
        for target in TARGETS:
            router = Router(models_dir / target)
            _, answers = router.sample(
                questions,
                n=params.n,
                temperature=params.temperature,
                max_new_tokens=params.max_new_tokens,
                batch_size=params.batch_size,
                seed=seed,
                clusters=[0] * len(questions),
                progress=True,
                desc=f"{target} model T={params.temperature:g}",
            )
            del router
            samples = decode_answers(task_ids, answers, target, separator)
            verdicts = score_samples(sandbox, problems, samples)
            metrics, curve = summarize(samples, verdicts, params.ks, params.n)
            log.info(
                "%s: %s; %s %d of %d",
                target,
                ", ".join(f"pass@{k} {metrics[f'pass@{k}']:.4f}" for k in sorted(set(params.ks))),
                EDIT_FAILED,
                metrics[EDIT_FAILED],
                len(samples),
            )
            results[target] = ModelResult(samples, verdicts, metrics, curve)
    return results
