"""Typed, validated params: one frozen dataclass per params.yaml section.

The section classes live in this package, one module per area of the library
(`curation`, `lm`, `pretraining`, `refine`, `synth`, `specialists`, `evaluation`, `dpo`, `edits`,
`report`); each library module imports its own section from here. The package imports
nothing of codealign but its errors, so reading params never pulls in the library.

`load_params(path)` reads a whole params file: the top-level `seed`, `k` and
`train_seed` and every section in `SECTIONS`. `seed` is the master seed (the tiny world,
the corpus, the data); `train_seed` (null: `seed`) seeds only what comes after the data
(K-means, adapter training, sampling, DPO, lintseq_eval), so a training experiment can be
repeated over seeds on the same curated data. Any key it does not know is an error, so a
typo never silently falls back to a default. A field's default is its value in the
default profile, params/default.yaml; docs/params.md lists every key (`codealign params
--markdown` writes it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from codealign.errors import CodealignError
from codealign.params.core import Section, _coerce, param
from codealign.params.curation import DataParams, DatasetMetricsParams, DedupParams
from codealign.params.dpo import (
    CurriculumParams,
    DpoParams,
    PairsParams,
    SampleParams,
    ScoreParams,
)
from codealign.params.edits import LintseqEvalParams, LintseqParams
from codealign.params.evaluation import EvalParams
from codealign.params.lm import EmbedParams, FetchParams
from codealign.params.pretraining import (
    BaseModelEvalParams,
    BaseModelParams,
    HeldoutInstructionsParams,
)
from codealign.params.refine import RefineParams, TinyHelenParams
from codealign.params.report import ReportParams
from codealign.params.specialists import (
    ClusterParams,
    SFTBaselineParams,
    SFTParams,
    SpecialistsParams,
)
from codealign.params.synth import SynthParams

__all__ = ["SECTIONS", "TOP_LEVEL", "Params", "Section", "load_params", "param", "parse_params"]

# Section name in a params file -> its class, in the order of params.yaml.
SECTIONS: dict[str, type[Section]] = {
    "data": DataParams,
    "fetch": FetchParams,
    "base_model": BaseModelParams,
    "base_model_eval": BaseModelEvalParams,
    "heldout_instructions": HeldoutInstructionsParams,
    "refine": RefineParams,
    "tinyhelen": TinyHelenParams,
    "synth": SynthParams,
    "embed": EmbedParams,
    "dedup": DedupParams,
    "dataset_metrics": DatasetMetricsParams,
    "cluster": ClusterParams,
    "sft": SFTParams,
    "sft_baseline": SFTBaselineParams,
    "specialists": SpecialistsParams,
    "eval": EvalParams,
    "sample": SampleParams,
    "score": ScoreParams,
    "pairs": PairsParams,
    "curriculum": CurriculumParams,
    "dpo": DpoParams,
    "lintseq": LintseqParams,
    "lintseq_eval": LintseqEvalParams,
    "report": ReportParams,
}

# The top-level scalars: type, bounds (as `param` takes them), required, doc.
TOP_LEVEL: dict[str, tuple[type, dict[str, Any], bool, str]] = {
    "seed": (int, {"ge": 0}, True, "master seed: the tiny world, the corpus, the data"),
    "k": (int, {"ge": 1}, True, "number of K-means clusters, so of specialist adapters"),
    "train_seed": (
        int,
        {"ge": 0},
        False,
        "seeds what comes after the data (K-means, adapters, sampling, DPO, lintseq_eval); "
        "null or absent: seed",
    ),
}


@dataclasses.dataclass(frozen=True)
class Params:
    """A whole params file: top-level `seed`, `k`, `train_seed`, one object per section."""

    seed: int
    k: int
    sections: dict[str, Section]
    train_seed: int  # resolved: the file's `train_seed`, or `seed` when that is null or absent

    def __getitem__(self, name: str) -> Any:
        return self.sections[name]

    def seed_of(self, name: str) -> int:
        """Section `name`'s own `seed` (e.g. `base_model.seed`, `lintseq.seed`), or the
        master seed where that is null."""
        own = self.sections[name].seed
        return self.seed if own is None else own


def _top_level(raw: dict[str, Any], key: str) -> int:
    hint, bounds, _required, _doc = TOP_LEVEL[key]
    return _coerce(raw[key], hint, key, bounds)


def parse_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise CodealignError(f"{source}: expected a mapping at the top level")
    for key in raw:
        if key not in SECTIONS and key not in TOP_LEVEL:
            raise CodealignError(f"unknown params key '{key}' in {source}")
    for key, (_hint, _bounds, required, _doc) in TOP_LEVEL.items():
        if required and key not in raw:
            raise CodealignError(f"missing params key '{key}' in {source}")
    seed = _top_level(raw, "seed")
    k = _top_level(raw, "k")
    train_seed = seed if raw.get("train_seed") is None else _top_level(raw, "train_seed")
    sections = {name: cls.from_dict(raw.get(name), name) for name, cls in SECTIONS.items()}
    # Reference solutions among the policy's samples: pairs that are not on-policy. Only a
    # rehearsal on tiny random models or a run of the tiny world's own `tiny` model (the
    # smoke profile: its 20-step model passes no test) may ask for them.
    tiny_world = sections["data"].source == "tinyworld" and sections["base_model"].name == "tiny"
    if (
        sections["sample"].add_reference
        and not sections["fetch"].tiny_from_config
        and not tiny_world
    ):
        raise CodealignError(
            f"{source}: sample.add_reference: true puts reference solutions among the policy's "
            "samples; only a rehearsal on tiny random models (fetch.tiny_from_config: true) "
            "or a tiny-world smoke run (data.source: tinyworld, base_model.name: tiny) may set it"
        )
    return Params(seed=seed, k=k, sections=sections, train_seed=train_seed)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; every error names the key (or the file)."""
    path = Path(path)
    if not path.is_file():
        raise CodealignError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CodealignError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_params(raw, str(path))
