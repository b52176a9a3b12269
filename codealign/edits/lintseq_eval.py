"""Training on edits against training on programs: the LintSeq pass@k comparison.

Two K = 1 LoRA adapters over the base model, trained on the same records (the lintseq
stage's: each program's edit sequence 0 and its code) with the same `sft` params and
the same number of optimizer steps (the code run's): one answers with the whole
program (`sft.target: code`), the other with the program as a sequence of diffs
(`sft.target: edits`), whatever `sft.target` itself says. Each model then samples `n`
answers per benchmark task (tinyeval by default) at one temperature and the same token
budget, through `codealign.evaluation.evaluate.evaluate`, the path every evaluation
takes (questions in the chat format of `codealign.evaluation.chat`).

Decoding. The code model's program is its answer's first fenced block or the whole
answer (`codealign.evaluation.chat.program`). The edits model's diffs are applied in order
to the empty program (`codealign.edits.lintseq.decode_target`). An answer with no diff, a
diff that does not parse, or one that does not apply (context that does not match, a
hunk outside the program, an answer cut off mid-diff by the token budget) gets the
verdict status `edit_failed` without reaching the sandbox: a failure for pass@k, and
counted apart, by reason, in the metrics. Never an exception.

Scoring. Decoded programs run in the sandbox as full programs, as
`evaluate` scores every chat policy; pass@k is the unbiased
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
from codealign.evaluation import chat
from codealign.params.edits import LintseqEvalParams
from codealign.params.specialists import TARGETS, SFTParams
from codealign.specialists.sft import answer_of, to_conversation

log = logging.getLogger(__name__)

EDIT_FAILED = "edit_failed"
# One adapter routes nothing: the manifest's embedder is never loaded (Router, k = 1).
NO_EMBEDDER = {"model": "none", "identity": None, "note": "K = 1: no routing"}
RECORD_FIELDS = {"id": (str, int), "question": str, "code": str, "target": str, "sample": int}


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


def decode_answer(answer: str, target: str, separator: str) -> dict[str, Any]:
    """The sample fields of one answer: `answer, completion, decode, reason, edits`.
    `decode` is ok (completion is the program) or edit_failed (completion None)."""
    from codealign.edits.lintseq import decode_target

    if target == "code":
        status, program, reason, edits = "ok", chat.program(answer), "", None
    else:
        decoded = decode_target(answer, separator)
        status, program = decoded.status, decoded.program
        reason, edits = decoded.reason, decoded.edits
    return {
        "answer": answer,
        "completion": program,
        "decode": status,
        "reason": reason,
        "edits": edits,
    }


def decode_answers(
    task_ids: Sequence[str],
    answers: Sequence[Sequence[str]],
    target: str,
    separator: str,
) -> list[dict[str, Any]]:
    """One sample record per answer: `task_id, completion_id` and `decode_answer`'s fields."""
    return [
        {"task_id": task_id, "completion_id": j, **decode_answer(text, target, separator)}
        for task_id, texts in zip(task_ids, answers, strict=True)
        for j, text in enumerate(texts)
    ]


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
    from codealign.evaluation.evaluate import evaluate
    from codealign.evaluation.policy import SamplingSpec, load_policy, resolve_policy
    from codealign.execution import Limits, Sandbox

    sampling = SamplingSpec(
        params.n, params.temperature, params.max_new_tokens, params.batch_size, seed
    )
    results = {}
    with Sandbox(workers=params.workers, limits=Limits(timeout=params.timeout)) as sandbox:
        for target in TARGETS:
            policy = load_policy(resolve_policy(models_dir / target))
            run = evaluate(
                policy,
                benchmark,
                sampling,
                sandbox,
                decode=lambda answer, target=target: decode_answer(answer, target, separator),
            )
            del policy
            metrics, curve = summarize(run.samples, run.verdicts, params.ks, params.n)
            log.info(
                "%s: %s; %s %d of %d",
                target,
                ", ".join(f"pass@{k} {metrics[f'pass@{k}']:.4f}" for k in sorted(set(params.ks))),
                EDIT_FAILED,
                metrics[EDIT_FAILED],
                len(run.samples),
            )
            results[target] = ModelResult(run.samples, run.verdicts, metrics, curve)
    return results
