"""The seed sets: what the pipeline starts from, from the tiny world or from real data.

`data.source: tinyworld` (default) builds the tiny world from the master seed and
writes, all in `data/seed/`:

- `train.jsonl`: every train task (HumanEval format); the pretraining corpus draws its code here;
- `s1.jsonl`: S1, question/code pairs tagged easy/medium/hard (SFT records);
- `s2.jsonl`: S2, titles with 3-6 keywords (plus the question and code the world knows),
  the lowest quartile of titles by length dropped as underspecified (METHOD.md);
- `keywords.json`: the keyword vocabulary, the deduplicated union of S2's keywords;
- `tinyeval.jsonl`: the held-out benchmark (HumanEval format), read only by the final
  evaluation and the report;
- `tinydev.jsonl`: the held-out dev set hyperparameters are chosen on (HumanEval format);
- `pool.jsonl`: the DPO prompt pool (HumanEval format).

tinyeval and tinydev hold each of their functions once and none of the training side's
(train, S1, S2, pool) under any name (`codealign.tinyworld.world`); `data.n_eval` and
`data.n_dev` are maxima. `seed_metrics` counts each set's tasks and distinct functions
and what a held-out set fell short of its request by.

`data.source: real` builds the DPO pool from `data.pool_sources` (MBPP+ tasks outside
MBPP test and validation, with their extended tests; APPS problems) and S1, S2 and the
vocabulary from the MBPP train and prompt problems that are not in the pool (see
`codealign.curation.pool`); no pool, S1 or S2 problem is an eval (HumanEval, MBPP test)
or dev (MBPP validation) problem by id, statement or AST key. `train.jsonl`,
`tinyeval.jsonl` and `tinydev.jsonl` are then empty, since an existing base model needs
no corpus and the real profile evaluates on HumanEval and MBPP test.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from codealign.io import write_json, write_jsonl
from codealign.params.curation import DataParams

log = logging.getLogger(__name__)

SEED_FILES = ("train.jsonl", "s1.jsonl", "s2.jsonl", "keywords.json", "tinyeval.jsonl",
              "tinydev.jsonl", "pool.jsonl")  # fmt: skip


def drop_short_titles(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the lowest quartile of records by title length (ties broken by order)."""
    ranked = sorted(range(len(records)), key=lambda i: (len(records[i]["title"]), i))
    dropped = set(ranked[: len(records) // 4])
    return [r for i, r in enumerate(records) if i not in dropped]


def tinyworld_seed_sets(params: DataParams, seed: int) -> dict[str, Any]:
    """Everything `data/seed/` holds, built from the tiny world."""
    from codealign.tinyworld.world import build_world

    world = build_world(
        seed, params.n_train, params.n_pool, params.n_eval, params.n_dev, names=params.names
    )
    rng = random.Random(seed)
    order = list(range(len(world.train)))
    rng.shuffle(order)
    s1_tasks = [world.train[i] for i in order[: params.s1_size]]
    s2_tasks = [world.train[i] for i in order[params.s1_size : params.s1_size + params.s2_size]]
    s1 = [t.to_sft("seed_s1") for t in s1_tasks]
    s2 = drop_short_titles([{**t.to_sft("seed_s2"), "title": t.title} for t in s2_tasks])
    vocabulary = sorted({k for r in s2 for k in r["keywords"]})
    sets = {
        "train.jsonl": [t.to_problem() for t in world.train],
        "s1.jsonl": s1,
        "s2.jsonl": s2,
        "keywords.json": vocabulary,
        "tinyeval.jsonl": [t.to_problem() for t in world.eval],
        "tinydev.jsonl": [t.to_problem() for t in world.dev],
        "pool.jsonl": [t.to_problem() for t in world.pool],
        "metrics": seed_metrics(world, s1_tasks, s2, params),
    }
    check_held_out(sets)
    return sets


def check_held_out(sets: dict[str, Any]) -> None:
    """Fail loudly if a training-side program (train: the corpus's code, S1, S2; the DPO
    pool) is a renamed copy of a tinyeval or tinydev task by the AST key. The world is
    disjoint by construction, so a twin is a bug to fix, not data to filter away."""
    from codealign.curation.dedup import eval_task_from_record, require_no_twins

    held = [
        eval_task_from_record(record, name.split(".")[0], f"{name}:{i}")
        for name in ("tinyeval.jsonl", "tinydev.jsonl")
        for i, record in enumerate(sets[name], start=1)
    ]
    for name, field in (("train.jsonl", None), ("s1.jsonl", "code"), ("s2.jsonl", "code"),
                        ("pool.jsonl", None)):  # fmt: skip
        programs = [
            r[field] if field else r["prompt"] + r["canonical_solution"] for r in sets[name]
        ]
        require_no_twins(programs, held, f"data/seed/{name}")


def seed_metrics(world, s1_tasks, s2: list[dict], params: DataParams) -> dict[str, Any]:
    """Tasks and distinct functions per set, and each held-out set's shortfall."""
    from codealign.tinyworld.world import set_counts

    by_id = {t.task_id: t for t in world.train}
    sets = {
        "train": set_counts(world.train),
        "s1": set_counts(s1_tasks),
        "s2": set_counts([by_id[r["id"]] for r in s2]),
        "pool": set_counts(world.pool),
        "tinydev": set_counts(world.dev),
        "tinyeval": set_counts(world.eval),
    }
    return {
        "sets": sets,
        "requested": {"tinydev": params.n_dev, "tinyeval": params.n_eval},
        "shortfall": {
            "tinydev": world.shortfall.get("dev", 0),
            "tinyeval": world.shortfall.get("eval", 0),
        },  # fmt: skip
    }


def real_seed_sets(params: DataParams, seed: int) -> dict[str, Any]:
    """Everything `data/seed/` holds, built from the vendored real datasets.

    The DPO pool and the SFT seed come from `codealign.curation.pool.real_split`: the pool
    holds the problems of `data.pool_sources` that are not eval (HumanEval, MBPP test) or
    dev (MBPP validation) problems by id, statement or AST key; S1/S2 come from MBPP train
    and prompt problems that are none of these and not in the pool either.
    """
    from codealign.curation import datasets
    from codealign.curation.pool import check_real_split, real_split

    raw_dir = Path(params.raw_dir)
    split = real_split(params.pool_sources, raw_dir)
    sets = datasets.real_seed_sets(raw_dir, split["seed_problems"])
    check_real_split(split["held"], split["pool"], {"s1.jsonl": [r["code"] for r in sets.s1]})
    pool = split["metrics"]["pool"]
    log.info("DPO pool: %s of %s; dropped %s", pool["kept"], pool["candidates"], pool["dropped"])
    return {
        "train.jsonl": [],  # an existing base model needs no pretraining corpus
        "s1.jsonl": sets.s1,
        "s2.jsonl": sets.s2,
        "keywords.json": sets.vocabulary,
        "tinyeval.jsonl": [],  # the real profile evaluates on HumanEval and MBPP test
        "tinydev.jsonl": [],  # ... and chooses on MBPP validation
        "pool.jsonl": split["pool"],  # MBPP+ and APPS problems, none in SFT, eval or dev
        "metrics": split["metrics"],
    }


def write_seed_sets(sets: dict[str, Any], out_dir: Path) -> dict[str, int]:
    """Write each seed file under `out_dir` (the caller makes `out_dir` atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in SEED_FILES:
        value = sets[name]
        if name.endswith(".json"):
            write_json(out_dir / name, value)
        else:
            write_jsonl(out_dir / name, value)
        counts[name] = len(value)
    return counts
