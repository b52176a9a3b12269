"""Sections of the curation stages: `data` (seed), `dedup`, `dataset_metrics`."""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param

EMBED_FIELDS = ("question", "code", "question_code")
# Vendored datasets by name (codealign.curation.datasets reads them from data/raw): SFT records ...
NAMED_DATASETS = ("code_alpaca_2k", "mbpp", "mbpp_train")
# ... evaluation and dev sets (HumanEval, MBPP test, MBPP+: 224 of its 378 tasks are MBPP
# test's, the rest MBPP train, validation and prompt tasks; MBPP validation: the paper's
# dev set) ...
EVAL_SETS = ("humaneval", "mbpp", "mbpp_plus", "mbpp_validation")
# ... and the problems a real DPO pool is drawn from (codealign.curation.pool).
POOL_SOURCES = ("mbpp_plus", "apps_call", "apps_stdio")


@dataclass(frozen=True)
class DataParams(Section):
    """Where the seed data comes from and how large each part of the tiny world is."""

    source: str = param(
        "tinyworld",
        choices=("tinyworld", "real"),
        doc="tinyworld: the offline default; real: vendored MBPP/APPS/HumanEval",
    )
    n_train: int = param(4000, ge=1, doc="tiny-world train tasks (corpus, S1, S2)")
    n_pool: int = param(200, ge=1, doc="tiny-world DPO prompt pool (disjoint from train and eval)")
    n_eval: int = param(
        100, ge=1, doc="tinyeval tasks at most, one per distinct function (short sets warn)"
    )
    n_dev: int = param(
        100, ge=0, doc="tinydev tasks at most, one per distinct function: the dev split"
    )
    names: str = param(
        "varied",
        choices=("varied", "plain"),
        doc="tiny-world surface names: varied (random function and argument names) or plain "
        "(the template's name, arguments named by role)",
    )
    s1_size: int = param(150, ge=1, doc="S1: question/code seed pairs")
    s2_size: int = param(300, ge=4, doc="S2 titles before the shortest quartile is dropped")
    raw_dir: str = param("data/raw", doc="vendored raw data (source: real)")
    pool_sources: tuple[str, ...] = param(
        POOL_SOURCES,
        doc="source: real: where the DPO pool comes from, each problem held out of SFT, eval "
        "and dev by id, statement and AST key: " + ", ".join(POOL_SOURCES),
    )

    def validate(self, prefix: str) -> None:
        for i, name in enumerate(self.pool_sources):
            if name not in POOL_SOURCES:
                raise CodealignError(
                    f"{prefix}.pool_sources[{i}] must be one of {', '.join(POOL_SOURCES)}, "
                    f"got {name!r}"
                )
        if self.source == "real" and not self.pool_sources:
            raise CodealignError(f"{prefix}.pool_sources must name a source when source is real")
        if self.s1_size + self.s2_size > self.n_train:
            raise CodealignError(
                f"{prefix}.s1_size + {prefix}.s2_size ({self.s1_size + self.s2_size}) "
                f"must not exceed {prefix}.n_train ({self.n_train})"
            )


@dataclass(frozen=True)
class DedupParams(Section):
    """Knobs of the dedup stage (merge, decontaminate, dedup, split)."""

    threshold: float = param(
        0.95, gt=0, le=1, doc="a later record is dropped when its cosine to a kept one exceeds this"
    )
    embed_field: str = param(
        "question", choices=EMBED_FIELDS, doc="what is embedded: question, code or question_code"
    )
    method: str = param(
        "exact", choices=("exact", "approximate"), doc="'approximate' uses faiss (~1M records)"
    )
    chunk_size: int = param(2048, ge=1, doc="rows per similarity tile; bounds memory")
    approx_nprobe: int = param(16, ge=1, doc="approximate: nearest cells each record probes")
    approx_nlist: int | None = param(
        None, ge=1, doc="approximate: k-means cells; null picks a cost-balancing number"
    )
    decontam_ngram_size: int = param(10, ge=1, doc="words per n-gram for overlap")
    decontam_ngram_threshold: float = param(
        0.5, gt=0, le=1, doc="fraction of an eval task's n-grams that marks a record contaminated"
    )
    decontam_embed_threshold: float = param(
        0.9, gt=0, le=1, doc="cosine to an eval task above which a record is contaminated"
    )
    validation_fraction: float = param(
        0.05, ge=0, lt=1, doc="share of kept records held out for checkpoint choice"
    )
    eval_sets: tuple[str, ...] = param(
        (),
        doc="named eval sets decontaminated against besides the eval files: "
        + ", ".join(EVAL_SETS),
    )
    extra_datasets: tuple[str, ...] = param(
        (), doc="named datasets merged after the inputs: " + ", ".join(NAMED_DATASETS)
    )
    against_pool: bool = param(
        False,
        doc="also decontaminate against the DPO pool (data/seed/pool.jsonl), so no SFT item "
        "is a pool problem; on for real data (the tiny world's pool is disjoint by construction)",
    )

    def validate(self, prefix: str) -> None:
        for key, names, known in (
            ("eval_sets", self.eval_sets, EVAL_SETS),
            ("extra_datasets", self.extra_datasets, NAMED_DATASETS),
        ):
            for i, name in enumerate(names):
                if name not in known:
                    raise CodealignError(
                        f"{prefix}.{key}[{i}] must be one of {', '.join(known)}, got {name!r}"
                    )


@dataclass(frozen=True)
class DatasetMetricsParams(Section):
    """Knobs of the dataset_metrics stage."""

    sample_size: int = param(300, ge=2, doc="records sampled per dataset for the spreads")
    seed: int | None = param(None, ge=0, doc="sampling seed; null uses the top-level seed")
    mtld_threshold: float = param(0.72, gt=0, lt=1, doc="MTLD factor threshold")
    references: tuple[str, ...] = param(
        ("code_alpaca_2k", "mbpp"),
        doc="vendored public datasets measured beside ours, in full: " + ", ".join(NAMED_DATASETS),
    )

    def validate(self, prefix: str) -> None:
        for i, name in enumerate(self.references):
            if name not in NAMED_DATASETS:
                raise CodealignError(
                    f"{prefix}.references[{i}] must be one of {', '.join(NAMED_DATASETS)}, "
                    f"got {name!r}"
                )
