"""What every section shares: the metrics files' names, reading a key with one clear error,
markdown cells and tables, and the `Context` a section reads from and draws into."""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.io import read_json
from codealign.params.report import ReportParams

DPO_SEEDS = "dpo_seeds.json"
KSWEEP = "ksweep.json"
LINTSEQ_EVAL = "lintseq_eval.json"
LINTSEQ_SEEDS = "lintseq_seeds.json"
BASE_MODEL_EVAL = "base_model_eval.json"
MIXTURE = "mixture.json"

# ---------------------------------------------------------------------------- reading


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "a number", float: "a number", str: "a string", bool: "true or false"}
    names |= {dict: "an object", list: "a list", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def need(obj: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """`obj[key]`, or one error naming the file and key when it is missing or of the wrong type.

    `where` is the file, optionally followed by `: <key path>` of `obj` inside it. Numbers
    are int or float, never bool.
    """
    file, _, parent = where.partition(": ")
    path = f"{parent}.{key}" if parent else key
    if not isinstance(obj, dict) or key not in obj:
        raise CodealignError(f"{file}: missing key '{path}'")
    value = obj[key]
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise CodealignError(
                f"{file}: '{path}' must be {_kind_name(kind)}, got {type(value).__name__}"
            )
    return value


NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))


def natural(text: str) -> list:
    """Sort key that puts adapter_2 before adapter_10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


# ---------------------------------------------------------------------------- markdown


def cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    """A markdown table; `align` has one letter per column (l or r), default left then right."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


@dataclass
class Context:
    """Where the report reads and writes, and what it has drawn so far."""

    metrics_dir: Path
    figures_dir: Path  # the staging folder the figures are written to
    figures_link: str  # the figures folder as the markdown links it (relative, posix)
    md_dir: Path  # the folder the markdown file will live in
    params: ReportParams
    figures: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.metrics_dir / name

    def shown(self, name: str) -> str:
        """A metrics file as the report names it: relative, independent of where it runs."""
        return f"`{self.metrics_dir.name}/{name}`"

    def load(self, name: str) -> Any | None:
        path = self.path(name)
        return read_json(path) if path.is_file() else None

    def base_digest(self) -> str | None:
        """sha256 of this pipeline's base model, as the stages that read it recorded it."""
        for name, key in (
            (BASE_MODEL_EVAL, "model_digest"),
            ("dpo_compare.json", "base_model_digest"),
            (LINTSEQ_EVAL, "base_model_digest"),
        ):
            data = self.load(name)
            if isinstance(data, dict) and isinstance(data.get(key), str):
                return data[key]
        return None

    def elsewhere(self, name: str, digests: set[str]) -> list[str]:
        """A note when none of the base models the aggregate `name` ran on is this one's."""
        ours = self.base_digest()
        if ours is None or not digests or ours in digests:
            return []
        theirs = ", ".join(sorted(d[:8] for d in digests))
        return [
            f"*From another base model: the runs in {self.shown(name)} started from base "
            f"model {theirs}, this pipeline's is {ours[:8]} (another profile, such as "
            "params/full.yaml, or an older run). Rerun them to compare on this one.*",
            "",
        ]

    def not_run(self, name: str, stage: str) -> list[str]:
        return [f"*Not run: {self.shown(name)} is missing; it is written by `dvc repro {stage}`.*"]

    def image(self, name: str, alt: str) -> str:
        self.figures.append(name)
        return f"![{alt}]({self.figures_link}/{name})"

    def draw(self, name: str, alt: str, plot: Callable[[Any], None], **figure: Any) -> str:
        """Make a figure with `plot(fig)`, save it as `name`, return its markdown link."""
        plt = pyplot()
        fig = plt.figure(**figure)
        try:
            plot(fig)
            # No "Software" stamp, so a matplotlib upgrade alone does not change the bytes.
            fig.savefig(
                self.figures_dir / name,
                format="png",
                dpi=self.params.dpi,
                bbox_inches="tight",
                metadata={"Software": None},
            )
        finally:
            plt.close(fig)
        return self.image(name, alt)

    def include(self, source: str, name: str, alt: str) -> str | None:
        """Link a figure another stage drew (copied into the report folder, or in place)."""
        path = self.path(source)
        if not path.is_file():
            return None
        if self.params.copy_figures:
            shutil.copyfile(path, self.figures_dir / name)
            return self.image(name, alt)
        link = Path(os.path.relpath(path, self.md_dir)).as_posix()
        return f"![{alt}]({link})"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spread(stats: Any, where: str) -> str:
    """`mean (min–max)` of one metric's stats over seeds, or the value of a single seed."""
    mean = need(stats, "mean", where, (int, float))
    if need(stats, "n", where, int) < 2:
        return cell(mean)
    low, high = need(stats, "min", where, (int, float)), need(stats, "max", where, (int, float))
    return f"{cell(mean)} ({cell(low)}–{cell(high)})"


def base_digests(*values: Any) -> set[str]:
    """The base-model digests an aggregate recorded (older files have none)."""
    return {value for value in values if isinstance(value, str)}
