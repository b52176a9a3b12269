"""Diversity and complexity of an instruction dataset, comparable across datasets.

For each dataset of SFT-style records (`question`, `code`):

- `question_mtld`: MTLD (McCarthy & Jarvis 2010) of all questions joined in dataset
  order into one text, with lexicalrichness's tokenizer (lower-cased, digits and
  punctuation removed) and its bidirectional MTLD (the mean of the forward and the
  reversed pass) at factor threshold `dataset_metrics.mtld_threshold` (0.72). Joining
  measures the diversity of the dataset's language rather than of single short
  questions, where MTLD is unstable.
- `question_spread`, `code_spread`: on a seeded sample of `sample_size` records (all of
  them when the dataset is smaller), embed questions and code, take the mean cosine over
  all ordered pairs i != j and report its reciprocal (higher = more spread out). The mean
  comes from the norm of the sum of unit vectors, so no N x N matrix is built.
- `halstead_vocabulary`, `halstead_length`, `halstead_difficulty`: radon's Halstead
  totals of each whole program, averaged over the programs that parse.
- `cyclomatic_complexity`: for each program, the mean radon cyclomatic complexity of its
  functions and methods (classes are left out: radon scores a class as the sum of its
  methods, which would count them twice); a program with no function counts as one
  block scored by its module-level code. Averaged over the programs that parse.
- `parse_failures`: programs radon cannot parse (syntax errors, Python 2, null bytes);
  they count in `data_points` and the spreads but not in the complexity averages.
- `data_points`: the number of records.

A metric that is undefined for a dataset (an empty one, a single record, no parseable
program) is `null` in the JSON and `n/a` in the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.lm.embedding import l2_normalize
from codealign.params.curation import DatasetMetricsParams

METRIC_KEYS = (
    "question_mtld",
    "question_spread",
    "code_spread",
    "halstead_vocabulary",
    "halstead_length",
    "halstead_difficulty",
    "cyclomatic_complexity",
    "data_points",
    "parse_failures",
)

# Column headers of the markdown table, in METRIC_KEYS order.
COLUMN_TITLES = (
    "Question MTLD",
    "Question spread",
    "Code spread",
    "Halstead vocabulary",
    "Halstead length",
    "Halstead difficulty",
    "Cyclomatic complexity",
    "Data points",
    "Parse failures",
)


def question_mtld(questions: Sequence[str], threshold: float = 0.72) -> float | None:
    """Bidirectional MTLD of the questions joined into one text; None without words."""
    from lexicalrichness import LexicalRichness

    text = "\n".join(questions)
    lex = LexicalRichness(text)
    if lex.words == 0:
        return None
    return float(lex.mtld(threshold=threshold))


def spread(unit_vectors: np.ndarray) -> float | None:
    """1 / mean cosine over ordered pairs i != j of L2-normalised rows.

    None for fewer than two rows or a mean cosine of 0 (the reciprocal is undefined).
    """
    x = np.asarray(unit_vectors, dtype=np.float64)
    n = x.shape[0]
    if n < 2:
        return None
    total = x.sum(axis=0)
    # sum_{i,j} <x_i, x_j> = |sum x|^2; the diagonal contributes sum |x_i|^2.
    off_diagonal = float(total @ total) - float(np.einsum("ij,ij->", x, x))
    mean = off_diagonal / (n * (n - 1))
    if mean == 0:
        return None
    return 1.0 / mean


def sample_indices(n: int, size: int, seed: int) -> np.ndarray:
    """A seeded sample of min(n, size) positions, sorted."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


@dataclass(frozen=True)
class ProgramComplexity:
    """radon's measures of one program."""

    halstead_vocabulary: float
    halstead_length: float
    halstead_difficulty: float
    cyclomatic_complexity: float


def program_complexity(code: str) -> ProgramComplexity | None:
    """Halstead totals and mean cyclomatic complexity of one program; None if it does not parse."""
    from radon.complexity import cc_visit
    from radon.metrics import h_visit
    from radon.visitors import Class, ComplexityVisitor

    try:
        halstead = h_visit(code).total
        blocks = [b for b in cc_visit(code) if not isinstance(b, Class)]
        if blocks:
            cyclomatic = sum(b.complexity for b in blocks) / len(blocks)
        else:
            cyclomatic = float(ComplexityVisitor.from_code(code).complexity)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return ProgramComplexity(
        float(halstead.vocabulary),
        float(halstead.length),
        float(halstead.difficulty),
        cyclomatic,
    )


def complexity_summary(programs: Sequence[str]) -> dict[str, Any]:
    """Averages of `program_complexity` over parseable programs, plus the failure count."""
    parsed = [c for c in map(program_complexity, programs) if c is not None]
    out: dict[str, Any] = {"parse_failures": len(programs) - len(parsed)}
    for name in (
        "halstead_vocabulary",
        "halstead_length",
        "halstead_difficulty",
        "cyclomatic_complexity",
    ):
        out[name] = (sum(getattr(c, name) for c in parsed) / len(parsed)) if parsed else None
    return out


def dataset_metrics(
    records: Sequence[dict[str, Any]],
    embed: Callable[[list[str]], np.ndarray],
    params: DatasetMetricsParams,
    seed: int,
) -> dict[str, Any]:
    """All metrics of one dataset; `embed` maps texts to L2-normalised rows."""
    questions = [r["question"] for r in records]
    codes = [r["code"] for r in records]
    sample_seed = params.seed if params.seed is not None else seed
    picks = sample_indices(len(records), params.sample_size, sample_seed)
    out: dict[str, Any] = {
        "question_mtld": question_mtld(questions, params.mtld_threshold),
        "question_spread": None,
        "code_spread": None,
    }
    if len(picks) >= 2:
        # Unit rows whatever embed.normalize says: the spread is defined on cosines.
        out["question_spread"] = spread(l2_normalize(embed([questions[i] for i in picks])))
        out["code_spread"] = spread(l2_normalize(embed([codes[i] for i in picks])))
    out.update(complexity_summary(codes))
    out["data_points"] = len(records)
    return {key: out[key] for key in METRIC_KEYS}


def parse_dataset_spec(spec: str) -> tuple[str, list[str]]:
    """`NAME=PATH[,PATH...]` -> (name, paths), as the stage's --dataset option takes it."""
    name, sep, paths = spec.partition("=")
    if not sep or not name.strip() or not paths.strip():
        raise CodealignError(f"--dataset must be NAME=PATH[,PATH...], got {spec!r}")
    return name.strip(), [p.strip() for p in paths.split(",") if p.strip()]


def table_order(names: Sequence[str], references: Sequence[str]) -> list[str]:
    """Ours first, then the public references, then the rest, as in the paper's tables."""
    first = [n for n in ("curated", *references) if n in names]
    return first + [n for n in names if n not in first]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.2f}"


def render_markdown(metrics: dict[str, dict[str, Any]]) -> str:
    """A markdown table with one row per dataset, in the dict's order."""
    header = "| Dataset | " + " | ".join(COLUMN_TITLES) + " |"
    rule = "|---|" + "---:|" * len(COLUMN_TITLES)
    rows = [
        f"| {name} | " + " | ".join(_cell(values.get(k)) for k in METRIC_KEYS) + " |"
        for name, values in metrics.items()
    ]
    return "\n".join([header, rule, *rows]) + "\n"
