"""Sections of the models every stage loads: `embed` (dedup, dataset_metrics, cluster,
routing) and `fetch` (how hub models reach models/hub)."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.params.core import Section, param

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"


@dataclass(frozen=True)
class EmbedParams(Section):
    """How texts are embedded, shared by dedup, dataset_metrics and the embed stage."""

    model: str = param(
        BUNDLED_MODEL,
        doc="'bundled:all-MiniLM-L6-v2' (ships offline), a sentence-transformers dir or hub name",
    )
    prefix: str = param("", doc="prepended to every text; e5 models expect 'query: '")
    batch_size: int = param(64, ge=1, doc="texts per forward pass")
    normalize: bool = param(True, doc="L2-normalise the vectors (cosine = dot product)")
    max_seq_length: int | None = param(
        None, ge=1, doc="truncate inputs to this many tokens; null keeps the model's own limit"
    )
    device: str = param("auto", doc="'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ...")


@dataclass(frozen=True)
class FetchParams(Section):
    """How the profile's hub models reach models/hub (the `fetch` stage, codealign.lm.hub)."""

    tiny_from_config: bool = param(
        False,
        doc="build each model tiny from its vendored real config.json with random weights "
        "instead of downloading it (CPU rehearsal only; false in every real profile)",
    )
    revision: str | None = param(None, doc="hub revision of every fetched model (null: main)")
