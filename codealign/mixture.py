"""The code-share ablation: what code in the pretraining mixture does to English and to code.

`measure` scores one base model dir on four things that `base_model.code_share` may move:

- English: held-out tiny-world stories and facts (`english_document`), scored as they
  appear in the corpus (after the end-of-sequence token that separates documents).
- Code: the canonical solutions of tinyeval, each given its prompt (signature and
  docstring), so the score is that of the function body alone. Tinyeval never enters
  the corpus, which draws its code from the train split.
- English instruction following: `instruction_pair` prompts written as the corpus writes
  them (`Instruction: ...\\nAnswer:`), answered greedily; a hit is an exact match of the
  first line of the answer.
- Code pass@1 after SFT is not measured here: `evaluate` already scores the K = 1 model,
  and the collector (`codealign mixture`) reads it from metrics/evaluate.json.

Perplexity is per token, but every code share trains its own BPE tokenizer, so tokens
differ between the models compared; bits per byte (the same summed NLL over the UTF-8
bytes of the text) does not depend on the tokenizer, and is what the plot shows.

Held out, and what that means here. The held-out English and instructions come from
`random.Random` streams seeded with the string `"<salt>/english/<seed>"` (and
`.../instructions/...`). The corpus seeds its stream with the integer `seed`, and a
string seed is hashed (SHA-512) into the generator's key, so the two streams are
unrelated. A separate stream does not make documents new, though: the tiny world's
English comes from few templates. So any held-out English document that occurs verbatim
in the training corpus is skipped and counted (the stage rebuilds the corpus, which is
deterministic), and instruction documents are left out of the English score altogether,
since nearly every one of the ~210 possible pairs occurs in a corpus of any useful size.
That also makes the instruction check a test of what pretraining taught, not of
generalisation: the metrics report how many of its prompts occur in the corpus.

Scoring runs on the CPU, like the rest of base-model evaluation (codealign.evaluation).
"""

from __future__ import annotations

import io
import logging
import math
import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from codealign.cli import Command
from codealign.errors import CodealignError
from codealign.experiments import (
    PARAMS_FILE,
    ExperimentRow,
    _is_int,
    _is_number,
    _stats,
    format_stats,
    no_runs_error,
    read_experiments,
    skipped_text,
    sweep_options,
)
from codealign.io import atomic_path, read_jsonl, require_fields, write_json
from codealign.params import Section, param, register
from codealign.tinyworld.text import english_document, instruction_pair

log = logging.getLogger(__name__)

BASE_EVAL_FILE = "metrics/base_model_eval.json"
EVALUATE_FILE = "metrics/evaluate.json"
INSTRUCTION_PREFIX = "Instruction: "


@register("base_model_eval")
@dataclass(frozen=True)
class BaseModelEvalParams(Section):
    english_docs: int = param(500, ge=1, doc="held-out English documents (stories, facts) scored")
    code_docs: int = param(0, ge=0, doc="tinyeval canonical solutions scored (0: all)")
    instructions: int = param(200, ge=0, doc="English instructions answered greedily (0: none)")
    batch_size: int = param(32, ge=1, doc="sequences per forward pass or generate call")
    max_new_tokens: int = param(32, ge=1, doc="tokens generated per instruction answer")
    salt: str = param("heldout", doc="names the held-out RNG streams; change it for a fresh draw")

    def validate(self, prefix: str) -> None:
        if not self.salt.strip():
            raise CodealignError(f"{prefix}.salt must be a non-empty string")


# --- The held-out sets ------------------------------------------------------------------


def _stream(salt: str, what: str, seed: int) -> random.Random:
    # A string seed is hashed into the key: never the stream of the corpus's integer seed.
    return random.Random(f"{salt}/{what}/{seed}")


def instruction_prompt(question: str) -> str:
    """An instruction as the corpus writes it, up to where the answer starts."""
    # The corpus has "Answer: <answer>"; ending at the colon keeps the space with the
    # answer's first token, as the tokenizer saw it in training.
    return f"{INSTRUCTION_PREFIX}{question}\nAnswer:"


def heldout_english(
    n: int, seed: int, salt: str, seen: Collection[str] = frozenset()
) -> tuple[list[str], int]:
    """`n` English documents (no instruction documents) not in `seen`, and how many were skipped.

    Raises CodealignError if the draws keep landing in `seen` (a corpus that holds
    nearly all of the tiny world's English).
    """
    rng = _stream(salt, "english", seed)
    documents: list[str] = []
    skipped = 0
    while len(documents) < n:
        document = english_document(rng)
        if document.startswith(INSTRUCTION_PREFIX):
            continue
        if document in seen:
            skipped += 1
            if skipped > 10 * n + 1000:
                raise CodealignError(
                    f"cannot draw {n} held-out English documents: "
                    f"{skipped} of the draws so far occur in the training corpus"
                )
            continue
        documents.append(document)
    return documents, skipped


def heldout_instructions(n: int, seed: int, salt: str) -> list[tuple[str, str]]:
    """`n` (instruction, answer) pairs from the held-out stream."""
    rng = _stream(salt, "instructions", seed)
    return [instruction_pair(rng) for _ in range(n)]


def read_code(path: str | Path) -> list[tuple[str, str]]:
    """(prompt, canonical_solution) of every task of a tiny-world/HumanEval JSONL file."""
    pairs = []
    for lineno, record in enumerate(read_jsonl(path), start=1):
        require_fields(record, {"prompt": str, "canonical_solution": str}, f"{path}:{lineno}")
        pairs.append((record["prompt"], record["canonical_solution"]))
    return pairs


def corpus_documents(train_file: str | Path, base: Any, lintseq: Any, seed: int):
    """The set of documents of the corpus `base_model` pretrains on (same inputs, same corpus)."""
    from codealign.tinyworld.corpus import pretraining_corpus

    code = [prompt + solution for prompt, solution in read_code(train_file)]
    return frozenset(d["text"] for d in pretraining_corpus(code, base, lintseq, seed))


# --- Scoring ----------------------------------------------------------------------------


def score_texts(
    model, tokenizer, items: Sequence[tuple[str, str]], batch_size: int, desc: str = "scoring"
) -> dict[str, Any]:
    """Summed NLL of each `text` given `context`, for (context, text) items.

    Each item is read as a corpus document: end-of-sequence token, context, text, and
    the closing end-of-sequence token, which is scored with the text. Returns perplexity
    (exp of the token-weighted mean NLL), bits per byte of the text, and the counts.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    eos = tokenizer.eos_token_id
    if eos is None:
        raise CodealignError("the tokenizer has no end-of-sequence token to start documents with")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    limit = getattr(model.config, "max_position_embeddings", None)
    rows = []
    for context, text in items:
        context_ids = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        prefix = [eos, *context_ids]
        target = tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
        if limit and len(prefix) + len(target) > limit:
            raise CodealignError(
                f"a document of {len(prefix) + len(target)} tokens exceeds the model's "
                f"{limit} positions: {text[:40]!r}..."
            )
        rows.append((prefix, target))
    total_nll, n_tokens = 0.0, 0
    with torch.no_grad():
        for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", leave=False):
            batch = rows[start : start + batch_size]
            width = max(len(p) + len(t) for p, t in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (prefix, target) in enumerate(batch):
                ids = prefix + target
                input_ids[i, : len(ids)] = torch.tensor(ids)
                labels[i, len(prefix) : len(ids)] = torch.tensor(target)
                attention[i, : len(ids)] = 1
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            total_nll += F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
                reduction="sum",
            ).item()
            n_tokens += int((labels[:, 1:] != -100).sum())
    n_bytes = sum(len(text.encode("utf-8")) for _, text in items)
    return {
        "perplexity": math.exp(total_nll / n_tokens) if n_tokens else None,
        "bits_per_byte": total_nll / math.log(2) / n_bytes if n_bytes else None,
        "documents": len(items),
        "tokens": n_tokens,
        "bytes": n_bytes,
    }


def answer_of(completion: str) -> str:
    """The answer a greedy continuation gives: its first line, stripped."""
    return completion.split("\n", 1)[0].strip()


def instruction_accuracy(
    pairs: Sequence[tuple[str, str]], completions: Sequence[str]
) -> dict[str, Any]:
    """Exact-match accuracy of `completions` against the answers of `pairs`."""
    correct = sum(
        answer_of(completion) == answer
        for (_, answer), completion in zip(pairs, completions, strict=True)
    )
    return {
        "accuracy": correct / len(pairs) if pairs else None,
        "correct": correct,
        "prompts": len(pairs),
    }


def answer_instructions(model, tokenizer, questions: Sequence[str], params: BaseModelEvalParams):
    """Greedy continuations of the instruction prompts, each started as a corpus document."""
    from codealign.generation import generate

    start = tokenizer.eos_token or ""
    prompts = [start + instruction_prompt(q) for q in questions]
    outputs = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=params.max_new_tokens,
        batch_size=params.batch_size,
        desc="instructions",
    )
    return [texts[0] for texts in outputs]


def measure(
    model_dir: str | Path,
    code: Sequence[tuple[str, str]],
    params: BaseModelEvalParams,
    seed: int,
    seen: Collection[str] = frozenset(),
) -> dict[str, Any]:
    """English and code perplexity and English instruction accuracy of a base model dir.

    `code` holds (prompt, canonical_solution) pairs, the first `params.code_docs` of
    which are scored (all when 0); `seen` is the set of training-corpus documents: held-out
    English and code found in it are skipped and counted.
    """
    from codealign.generation import load_causal_lm

    tokenizer, model = load_causal_lm(model_dir)
    english, english_seen = heldout_english(params.english_docs, seed, params.salt, seen)
    code_items = [(p, s) for p, s in code if p + s not in seen]
    code_seen = len(code) - len(code_items)
    if params.code_docs:
        code_items = code_items[: params.code_docs]
    if not code_items:
        raise CodealignError(
            f"no held-out code to score ({code_seen} of {len(code)} tasks occur in the corpus)"
        )
    log.info("scoring %d English and %d code documents", len(english), len(code_items))
    result: dict[str, Any] = {
        "english": {
            **score_texts(model, tokenizer, [("", d) for d in english], params.batch_size),
            "skipped_in_corpus": english_seen,
        },
        "code": {
            **score_texts(model, tokenizer, code_items, params.batch_size),
            "skipped_in_corpus": code_seen,
        },
    }
    pairs = heldout_instructions(params.instructions, seed, params.salt)
    completions = answer_instructions(model, tokenizer, [q for q, _ in pairs], params)
    result["instructions"] = {
        **instruction_accuracy(pairs, completions),
        "in_corpus": sum(f"{instruction_prompt(q)} {a}" in seen for q, a in pairs),
    }
    return result


# --- The collector: experiments of the ablation, per code share ------------------------

# name -> (metrics file section, key); values are read from metrics/base_model_eval.json.
BASE_METRICS = {
    "english_perplexity": ("english", "perplexity"),
    "english_bits_per_byte": ("english", "bits_per_byte"),
    "code_perplexity": ("code", "perplexity"),
    "code_bits_per_byte": ("code", "bits_per_byte"),
    "instruction_accuracy": ("instructions", "accuracy"),
}
SFT_PASS1 = "sft_pass@1"
# Bits per byte, not per-token perplexity: each code share has its own tokenizer.
PANELS = {
    "english_bits_per_byte": "English, held out: bits per byte",
    "code_bits_per_byte": "tinyeval solutions: bits per byte",
    "instruction_accuracy": "English instructions: exact match",
    SFT_PASS1: "pass@1 after SFT (K = 1 model)",
}


@dataclass(frozen=True)
class MixtureRun:
    """One (code share, seed) point of the ablation."""

    code_share: float
    seed: int
    model_digest: str | None
    scores: dict[str, float | None]
    row: ExperimentRow


def mixture_runs(
    rows: Sequence[ExperimentRow], benchmark: str, skipped: Counter
) -> list[MixtureRun]:
    """One run per (code share, seed), the newest; `skipped` counts the rows left out and why."""
    candidates = []
    for row in rows:
        base = row.params.get("base_model")
        share = base.get("code_share") if isinstance(base, dict) else None
        seed = row.params.get("train_seed")
        if seed is None:  # train_seed null or absent: training used the master seed
            seed = row.params.get("seed")
        if not _is_number(share) or not _is_int(seed):
            skipped[f"no base_model.code_share and integer seed in {PARAMS_FILE}"] += 1
            continue
        measured = row.all_metrics.get(BASE_EVAL_FILE)
        if not isinstance(measured, dict):
            skipped[f"no {BASE_EVAL_FILE}"] += 1
            continue
        if _is_number(measured.get("code_share")) and measured["code_share"] != share:
            # The stage did not run in this experiment: the file is its baseline's.
            skipped[f"with a stale {BASE_EVAL_FILE} (measured at another code share)"] += 1
            continue
        scores = {name: _lookup(measured, *path) for name, path in BASE_METRICS.items()}
        if not all(_is_number(v) for v in scores.values()):
            skipped[f"with a {BASE_EVAL_FILE} lacking {', '.join(BASE_METRICS)}"] += 1
            continue
        evaluated = row.all_metrics.get(EVALUATE_FILE)
        pass1 = _lookup(evaluated, benchmark, "models", "k1", "pass@1")
        scores[SFT_PASS1] = float(pass1) if _is_number(pass1) else None
        digest = measured.get("model_digest")
        digest = digest if isinstance(digest, str) else None
        candidates.append(MixtureRun(float(share), seed, digest, scores, row))
    newest: dict[tuple[float, int], MixtureRun] = {}
    for run in sorted(candidates, key=lambda run: run.row.recency, reverse=True):
        if (run.code_share, run.seed) in newest:
            skipped["older repeats of a (code share, seed)"] += 1
        else:
            newest[(run.code_share, run.seed)] = run
    return sorted(newest.values(), key=lambda run: (run.code_share, run.seed))


def aggregate(runs: Sequence[MixtureRun], benchmark: str) -> dict[str, Any]:
    """Per code share: mean/min/max/n/values of each metric.

    Base-model metrics are taken once per distinct base model: runs that differ only in
    `train_seed` share one pretrained model (the corpus and its training use `seed`), and
    counting it three times would fake a spread of zero over three seeds.
    """
    by_share = []
    counted: set[int] = set()
    for share in sorted({run.code_share for run in runs}):
        at_share = [run for run in runs if run.code_share == share]
        models = _distinct_models(at_share)
        counted.update(id(run) for run in models)
        point: dict[str, Any] = {
            "code_share": share,
            "seeds": [run.seed for run in at_share],
            "base_models": len(models),
        }
        for name in BASE_METRICS:
            point[name] = _stats([run.scores[name] for run in models])
        sft = [run.scores[SFT_PASS1] for run in at_share if run.scores[SFT_PASS1] is not None]
        point[SFT_PASS1] = _stats(sft) if sft else None
        by_share.append(point)
    return {
        "benchmark": benchmark,
        "metrics": [*BASE_METRICS, SFT_PASS1],
        "by_share": by_share,
        "runs": [
            {
                "code_share": run.code_share,
                "seed": run.seed,
                "rev": run.row.rev,
                "name": run.row.name,
                "model_digest": run.model_digest,
                "base_model_counted": id(run) in counted,
                **run.scores,
            }
            for run in runs
        ],
    }


def _distinct_models(runs: Sequence[MixtureRun]) -> list[MixtureRun]:
    seen: set[str] = set()
    distinct = []
    for run in runs:
        if run.model_digest is None or run.model_digest not in seen:
            distinct.append(run)
            if run.model_digest is not None:
                seen.add(run.model_digest)
    return distinct


def _lookup(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def render_plot(summary: dict[str, Any]) -> bytes:
    """PNG, one panel per metric against code share: mean line, min-max band, a dot per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_share = summary["by_share"]
    seeds = sorted({run["seed"] for run in summary["runs"]})
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.8), squeeze=False)
    for ax, (metric, title) in zip(axes[0], PANELS.items(), strict=True):
        points = [p for p in by_share if p[metric] is not None]
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("code share of the pretraining corpus")
        ax.set_xlim(-0.05, 1.05)
        ax.set_xticks([p["code_share"] for p in by_share])
        ax.grid(alpha=0.3)
        if not points:
            ax.text(0.5, 0.5, f"no {EVALUATE_FILE}", ha="center", transform=ax.transAxes)
            continue
        xs = [p["code_share"] for p in points]
        ax.fill_between(
            xs,
            [p[metric]["min"] for p in points],
            [p[metric]["max"] for p in points],
            color="#4c72b0",
            alpha=0.2,
            label="min-max",
        )
        ax.plot(xs, [p[metric]["mean"] for p in points], marker="o", color="#222222", label="mean")
        per_model = metric in BASE_METRICS
        for i, seed in enumerate(seeds):
            dots = [
                (run["code_share"], run[metric])
                for run in summary["runs"]
                if run["seed"] == seed
                and run[metric] is not None
                and (run["base_model_counted"] or not per_model)  # as aggregated
            ]
            if not dots:
                continue
            nudge = 0.012 * (i - (len(seeds) - 1) / 2)  # equal scores stay visible
            ax.scatter(
                [x + nudge for x, _ in dots],
                [y for _, y in dots],
                s=16,
                color=colors(i % 10),
                zorder=3,
                label=f"seed {seed}",
            )
    legend: dict[str, Any] = {}  # every seed, whichever panels it has dots in
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[0][0].legend(list(legend.values()), list(legend), fontsize=7)
    fig.suptitle(f"code share ablation ({len(seeds)} seeds; pass@1 on {summary['benchmark']})")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


@click.command("mixture", cls=Command)
@sweep_options("mixture", "code share", "The four metrics against code share (PNG).")
def mixture_command(
    repo: Path, benchmark: str, out: Path, plot: Path, from_json: Path | None, all_commits: bool
) -> None:
    """Aggregate the code-share ablation run as DVC experiments, and plot it.

    Queue the grid, run it, then summarise it:

    \b
        for s in 0 0.25 0.5 1.0; do for seed in 0 1 2; do
          dvc exp run --queue -S base_model.code_share=$s -S train_seed=$seed \\
            base_model_eval evaluate; done; done
        dvc queue start -j 1      # then wait for `dvc queue status`
        codealign mixture

    Reads params base_model.code_share and train_seed (or seed), metrics/base_model_eval.json
    and the K = 1 model's pass@1 in metrics/evaluate.json of every finished experiment
    (queued, running and failed ones are skipped; of repeated (share, seed) runs the newest
    counts), prints mean [min, max] per share, and writes --out and --plot. Base-model
    metrics count each distinct base model once: train_seed does not change it.
    """
    rows, skipped, source = read_experiments(repo, from_json, all_commits)
    runs = mixture_runs(rows, benchmark, skipped)
    reasons = skipped_text(skipped)
    if not runs:
        raise no_runs_error(source, BASE_EVAL_FILE, skipped)
    summary = aggregate(runs, benchmark)
    png = render_plot(summary)
    write_json(out, summary)
    with atomic_path(plot) as tmp:
        tmp.write_bytes(png)

    columns = list(PANELS)
    click.echo("\t".join(["code_share", "seeds", "base_models", *columns]))
    for point in summary["by_share"]:
        share, seeds, models = f"{point['code_share']:g}", point["seeds"], point["base_models"]
        cells = [format_stats(point[metric]) for metric in columns]
        click.echo("\t".join([share, str(len(seeds)), str(models), *cells]))
    click.echo(
        f"{len(runs)} runs from {source}" + (f"; skipped {reasons}" if reasons else ""), err=True
    )
    click.echo(f"wrote {out} and {plot}", err=True)
