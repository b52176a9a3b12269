"""The real profile's split of the vendored data: eval, dev, the DPO pool and the SFT seed.

With `data.source: real`:

- **eval**: HumanEval (164) and MBPP test (task ids 11-510, 500); HumanEval+ holds the
  same problems as HumanEval.
- **dev**: MBPP validation (511-600, 90 problems), where choices are made.
- **DPO pool**: the problems of `data.pool_sources`, in this order:
  `mbpp_plus`, the MBPP+ tasks whose MBPP id is in the train or prompt split (115), with
  their extended EvalPlus tests (3 to 150 inputs each, the canonical solution's outputs
  as expected values), so a completion's score takes many values, not MBPP's 4;
  `apps_call`, the distinct call-based problems of the APPS selection (79, 6 to 50 tests);
  `apps_stdio`, its stdin/stdout problems (49). APPS problems have no reference solution.
- **SFT seed** (S1, S2): MBPP train and prompt problems that are not pool problems.

A candidate leaves the pool, and a problem leaves the SFT seed, when it is held out in
any of three ways, counted by reason in the seed stage's metrics: its MBPP id is an eval
or dev id (`eval_id`, `dev_id`: MBPP+ carries MBPP's ids), its statement is an eval or
dev statement up to case and whitespace (`eval_statement`, `dev_statement`), or one of
its functions equals an eval or dev function up to renaming (`eval_ast`, `dev_ast`: the
AST key of `codealign.curation.dedup`); a pool candidate also when it shares half of an
eval or dev task's word 10-grams (`eval_ngram`, `dev_ngram`: the dedup stage's rule at
its defaults). The SFT seed also drops what the pool holds (`pool_id`,
`pool_statement`, `pool_ast`); the dedup stage applies the n-gram rule to it.
`check_real_split` proves the result with the same keys and stops the stage on a violation.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from codealign.curation import datasets
from codealign.curation.dedup import (
    EvalTask,
    ast_keys,
    eval_task_from_record,
    ngram_contamination,
    require_no_twins,
)
from codealign.errors import CodealignError
from codealign.params.curation import DedupParams

# Which MBPP split each role takes its ids from.
EVAL_SPLIT, DEV_SPLIT = "test", "validation"
SFT_SPLITS = ("train", "prompt")
NGRAM = DedupParams()  # decontam_ngram_size and _threshold: 10 words, half of a task's n-grams


def _text_hash(text: str) -> str:
    from codealign.tinyworld.world import text_hash

    return text_hash(text)


def mbpp_id(task_id: str | int) -> int:
    """The MBPP task id of an MBPP record (`602`) or an MBPP+ task (`Mbpp/602`)."""
    return int(str(task_id).rsplit("/", 1)[-1])


class HeldOut:
    """Eval and dev problems, and the keys a training-side problem is compared by."""

    def __init__(self, tasks: Sequence[EvalTask], role: dict[str, str], mbpp_ids: dict[int, str]):
        self.tasks = list(tasks)
        self.role = role  # task source -> eval, dev or pool
        self.mbpp_ids = mbpp_ids  # MBPP id -> role
        self.statements: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        for task in self.tasks:
            self.statements.setdefault(_text_hash(task.question), role[task.source])
            for key in task.ast_keys:
                self.keys.setdefault(key, role[task.source])

    def reason(self, statement: str, *programs: str, mbpp: int | None = None) -> str | None:
        """Why a problem is held out (`<role>_id`, `<role>_statement`, `<role>_ast`), or
        None; `programs` are its reference solutions (MBPP+'s and MBPP's may differ)."""
        if mbpp is not None and mbpp in self.mbpp_ids:
            return f"{self.mbpp_ids[mbpp]}_id"
        hit = self.statements.get(_text_hash(statement))
        if hit:
            return f"{hit}_statement"
        for program in programs:
            for key in sorted(ast_keys(program)) if program else ():
                if key in self.keys:
                    return f"{self.keys[key]}_ast"
        return None


def held_out(raw_dir: Path) -> HeldOut:
    """The real profile's eval (HumanEval, MBPP test) and dev (MBPP validation) sets."""
    sets = {
        "humaneval": datasets.load_humaneval(),
        "mbpp": datasets.load_mbpp(EVAL_SPLIT, raw_dir),
        "mbpp_validation": datasets.load_mbpp(DEV_SPLIT, raw_dir),
    }
    role = {"humaneval": "eval", "mbpp": "eval", "mbpp_validation": "dev"}
    tasks = [
        eval_task_from_record(record, name, f"{name}: record {i}")
        for name, records in sets.items()
        for i, record in enumerate(records)
    ]
    ids = {r["task_id"]: role[name] for name in ("mbpp", "mbpp_validation") for r in sets[name]}
    return HeldOut(tasks, role, ids)


def _apps_record(record: dict[str, Any]) -> dict[str, Any]:
    """An APPS problem in the vendored file's own fields, which `codealign.problems` reads."""
    return {
        "task_id": record["task_id"],
        "id": int(record["task_id"].split("/", 1)[1]),
        "name": record["name"],
        "description": record["question"],
        "difficulty": record["difficulty"],
        "starter_code": record["starter_code"],
        "sample_io": record["sample_io"],
        "test_list": record["test_list"],
    }


class Candidate(NamedTuple):
    source: str  # a data.pool_sources name
    record: dict[str, Any]  # as pool.jsonl holds it
    statement: str  # the problem's text (for MBPP+, MBPP's own)
    programs: tuple[str, ...]  # reference solutions (MBPP+'s and MBPP's; none for APPS)
    mbpp: int | None  # the MBPP task id, for MBPP+


def pool_candidates(sources: Sequence[str], raw_dir: Path) -> list[Candidate]:
    """Every problem the sources hold, in source order."""
    out: list[Candidate] = []
    for source in sources:
        if source == "mbpp_plus":
            mbpp = {r["task_id"]: r for r in datasets.load_mbpp(raw_dir=raw_dir)}
            for record in datasets.load_mbpp_plus(raw_dir):
                number = mbpp_id(record["task_id"])
                original = mbpp.get(number, {"text": record["prompt"], "code": ""})
                programs = (_program(record), original["code"])
                out.append(Candidate(source, record, original["text"], programs, number))
        elif source in ("apps_call", "apps_stdio"):
            kind = source.split("_", 1)[1]
            for record in datasets.load_apps(raw_dir, unique=True):
                if record["kind"] == kind:
                    out.append(
                        Candidate(source, _apps_record(record), record["question"], (), None)
                    )
        else:
            raise CodealignError(f"unknown pool source {source!r}")
    return out


def tests_of(record: dict[str, Any]) -> int:
    """Unit tests of a pool record (what its completions are scored on)."""
    from codealign.problems import problem_from_record

    return problem_from_record(record, str(record.get("task_id"))).tests_total


def _program(record: dict[str, Any]) -> str:
    if "canonical_solution" in record:
        return record["prompt"] + record["canonical_solution"]
    return str(record.get("code") or "")


def _counts(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0, "total": 0}
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "total": sum(values),
    }


def _functions(programs: Sequence[str], statements: Sequence[str]) -> int:
    """Distinct problems by what they compute: AST keys where there is code, else the text."""
    keys = {
        ast_keys(program) or frozenset({_text_hash(text)})
        for program, text in zip(programs, statements, strict=True)
    }
    return len(keys)


def real_split(sources: Sequence[str], raw_dir: str | Path) -> dict[str, Any]:
    """The DPO pool, the MBPP problems S1/S2 are built from, and metrics counting both."""
    raw_dir = Path(raw_dir)
    held = held_out(raw_dir)
    pool, pool_text, dropped = [], [], Counter()
    candidates = Counter()
    found = pool_candidates(sources, raw_dir)
    shared = ngram_contamination(  # the dedup stage's n-gram rule, at its defaults
        [f"{c.statement}\n{c.programs[0] if c.programs else ''}" for c in found],
        held.tasks,
        NGRAM.decontam_ngram_size,
        NGRAM.decontam_ngram_threshold,
    )
    for i, candidate in enumerate(found):
        candidates[candidate.source] += 1
        why = held.reason(candidate.statement, *candidate.programs, mbpp=candidate.mbpp)
        if why is None and i in shared:
            why = f"{held.role[shared[i].task.source]}_ngram"
        if why:
            dropped[why] += 1
            continue
        pool.append((candidate.source, candidate.record))
        pool_text.append(candidate.statement)
    pool_records = [record for _, record in pool]

    mbpp = datasets.load_mbpp(raw_dir=raw_dir)
    pool_ids = {mbpp_id(r["task_id"]) for s, r in pool if s == "mbpp_plus"}
    pool_tasks = [  # each pool problem, and for MBPP+ its MBPP original (text and code) too
        eval_task_from_record(record, "pool", f"pool: record {i}")
        for i, record in enumerate(pool_records + [r for r in mbpp if r["task_id"] in pool_ids])
    ]
    in_pool = HeldOut(pool_tasks, {"pool": "pool"}, dict.fromkeys(pool_ids, "pool"))
    seeds, seed_dropped = [], Counter()
    for record in mbpp:
        if record["split"] not in SFT_SPLITS:
            continue
        why = in_pool.reason(record["text"], record["code"], mbpp=record["task_id"])
        why = why or held.reason(record["text"], record["code"])
        if why:
            seed_dropped[why] += 1
            continue
        seeds.append(record)

    tests = [tests_of(record) for record in pool_records]
    by_source = Counter(source for source, _ in pool)
    metrics = {
        "sets": {
            "pool": {
                "tasks": len(pool_records),
                "functions": _functions([_program(r) for r in pool_records], pool_text),
            },
            "sft_seed": {
                "tasks": len(seeds),
                "functions": _functions([r["code"] for r in seeds], [r["text"] for r in seeds]),
            },
        },
        "pool": {
            "sources": list(sources),
            "candidates": dict(candidates),
            "kept": {source: by_source.get(source, 0) for source in sources},
            "dropped": dict(sorted(dropped.items())),
            "tests_per_task": _counts(tests),
            "tasks_with_5_or_more_tests": sum(t >= 5 for t in tests),
        },
        "sft_seed": {
            "mbpp_splits": list(SFT_SPLITS),
            "dropped": dict(sorted(seed_dropped.items())),
        },
        "held_out": dict(sorted(Counter(task.source for task in held.tasks).items())),
    }
    return {"pool": pool_records, "seed_problems": seeds, "held": held, "metrics": metrics}


def check_real_split(
    held: HeldOut, pool: Sequence[dict], sft_programs: dict[str, Sequence[str]]
) -> None:
    """Stop when a pool problem is a renamed copy of an eval or dev task, or an SFT program
    (by file name) one of an eval, dev or pool task: by construction neither can happen."""
    require_no_twins([_program(r) for r in pool], held.tasks, "data/seed/pool.jsonl")
    pool_tasks = [
        eval_task_from_record(record, "pool", f"pool: record {i}") for i, record in enumerate(pool)
    ]
    for name, programs in sft_programs.items():
        require_no_twins(programs, [*held.tasks, *pool_tasks], f"data/seed/{name}")
