"""params/paper_rehearsal.yaml: the paper profile on CPU, differing from paper.yaml only so.

The rehearsal must run the paper's code paths; every key where it differs is listed here,
so a change to paper.yaml that the rehearsal does not follow (or a new difference) fails.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from codealign.curation.datasets import load_mbpp
from codealign.dpo.sample import add_references
from codealign.dpo.score import ScoreParams, score_samples
from codealign.errors import CodealignError
from codealign.params import load_params, parse_params
from codealign.problems import problem_from_record

ROOT = Path(__file__).resolve().parents[1]

# key -> (paper.yaml, paper_rehearsal.yaml)
DIFFERENCES = {
    "k": (10, 3),
    "fetch.tiny_from_config": (False, True),
    "base_model.dtype": ("bfloat16", "float32"),
    "base_model_eval.english_docs": (200, 20),
    "base_model_eval.instructions": (100, 8),
    "eval.limit": (0, 4),
    "eval.n": (10, 2),
    "eval.max_new_tokens": (512, 32),
    "eval.workers": (8, 2),
    "eval.timeout": (10.0, 5.0),
    "embed.batch_size": (256, 64),
    "embed.device": ("auto", "cpu"),
    "dedup.threshold": (0.95, 1.0),
    "dedup.decontam_embed_threshold": (0.9, 1.0),
    "dedup.chunk_size": (2048, 256),
    "dataset_metrics.sample_size": (1000, 200),
    "synth.backend": ("openai", "hf"),
    "synth.cycles": (2, 1),
    "synth.items_per_cycle": (2000, 8),
    "synth.s3_requests": (20000, 8),
    "synth.s4_requests": (5000, 4),
    "synth.s5_requests": (10000, 8),
    "synth.max_tokens": (512, 48),
    "synth.hf_model": ("models/base_model", "microsoft/phi-2"),
    "cluster.min_size": (50, 20),
    "sft.quantization": ("nf4", "none"),
    "sft.compute_dtype": ("float16", "float32"),
    "sft.max_length": (1024, 256),
    "sft.optimizer": ("paged_adamw_32bit", "adamw_torch"),
    "lintseq_eval.limit": (0, 4),
    "lintseq_eval.n": (50, 2),
    "lintseq_eval.ks": ([1, 10, 50], [1, 2]),
    "lintseq_eval.max_new_tokens": (768, 32),
    "lintseq_eval.workers": (8, 2),
    "lintseq_eval.timeout": (10.0, 5.0),
    "lintseq_eval.epochs": (None, 1.0),
    "sample.n": (10, 4),
    "sample.max_new_tokens": (512, 32),
    "sample.backend": ("vllm", "hf"),
    "sample.limit": (0, 32),
    "sample.dtype": ("bfloat16", "float32"),
    "sample.add_reference": (False, True),
    "score.workers": (8, 2),
    "score.timeout": (10.0, 5.0),
    "pairs.max_length": (1024, 256),
    "dpo.batch_size": (4, 2),
    "dpo.grad_accum": (4, 1),
    "dpo.dtype": ("bfloat16", "float32"),
    "dpo.eval_limit": (0, 4),
    "dpo.eval_n": (10, 2),
    "dpo.eval_max_new_tokens": (512, 32),
    "dpo.eval_batch_size": (32, 8),
    "dpo.eval_workers": (8, 2),
    "dpo.eval_timeout": (10.0, 5.0),
    "refine.documents": (8000, 300),
    "refine.measure_words": (20000, 2000),
    "tinyhelen.seeds": ([0, 1, 2], [0]),
    "tinyhelen.curve_points": (8, 2),
    "tinyhelen.heldout_docs": (200, 20),
    "tinyhelen.instructions": (200, 10),
    "tinyhelen.eval_tasks": (50, 4),
    "tinyhelen.eval_samples": (8, 2),
}


def flat(path: Path) -> dict:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def test_the_rehearsal_differs_from_paper_exactly_so():
    paper, rehearsal = flat(ROOT / "params/paper.yaml"), flat(ROOT / "params/paper_rehearsal.yaml")
    assert set(paper) == set(rehearsal)
    diff = {key: (paper[key], rehearsal[key]) for key in paper if paper[key] != rehearsal[key]}
    assert diff == DIFFERENCES


def test_the_rehearsal_keeps_the_paper_code_paths():
    rehearsal = load_params(ROOT / "params/paper_rehearsal.yaml")
    assert rehearsal["data"].source == "real"
    assert list(rehearsal["eval"].benchmarks) == ["humaneval", "mbpp"]
    assert rehearsal["base_model"].name == "microsoft/phi-2"
    assert (rehearsal["embed"].model, rehearsal["embed"].prefix) == (
        "intfloat/e5-base-v2",
        "query: ",
    )
    assert rehearsal.k > 1  # routed specialists


def test_rehearsal_knobs_are_off_in_every_real_profile():
    for path in sorted((ROOT / "params").glob("*.yaml")) + [ROOT / "params.yaml"]:
        if path.stem == "paper_rehearsal":
            continue
        params = load_params(path)
        assert not params["fetch"].tiny_from_config, path
        # The smoke profile's 20-step model passes no test: it mines pairs with the
        # reference among the candidates (params/smoke.yaml, docs/heldout.md).
        assert params["sample"].add_reference == (path.stem == "smoke"), path


def test_add_reference_outside_a_rehearsal_is_refused_in_one_line():
    raw = yaml.safe_load((ROOT / "params/paper.yaml").read_text(encoding="utf-8"))
    raw["sample"]["add_reference"] = True
    with pytest.raises(CodealignError) as info:
        parse_params(raw, "params/paper.yaml")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("params/paper.yaml: sample.add_reference: true")
    assert "fetch.tiny_from_config" in str(info.value)


def test_the_reference_joins_the_candidates_and_passes_so_pairs_can_be_mined():
    # From 602: the sandbox scores task 601's own reference 0 (its `Pair(...)` arguments).
    records = load_mbpp("train", ROOT / "data/raw")[1:4]
    answers = add_references(records, [["def nothing(): pass"]] * 3, "pool.jsonl")
    assert [len(a) for a in answers] == [2, 2, 2]
    assert [a[-1] for a in answers] == [r["code"] for r in records]
    problems = {str(r["task_id"]): problem_from_record(r, "pool") for r in records}
    samples = [
        {"task_id": str(r["task_id"]), "completion_id": i, "completion": text}
        for r, texts in zip(records, answers, strict=True)
        for i, text in enumerate(texts)
    ]
    scored = score_samples(problems, samples, ScoreParams(workers=1), progress=False)
    assert [s["score"] for s in scored] == [0.0, 1.0] * 3


def test_the_real_dpo_pool_states_no_evaluation_problem():
    """The paper pool (MBPP+ and APPS, tests/test_pool.py) passes the `sample` stage's
    disjointness check, and the rehearsal's first `sample.limit` prompts carry the reference
    solutions `sample.add_reference` needs; plain MBPP train would not pass the check."""
    from codealign.curation import datasets
    from codealign.curation.seed import real_seed_sets
    from codealign.dpo.sample import check_disjoint

    params = load_params(ROOT / "params/paper_rehearsal.yaml")
    data = replace(params["data"], raw_dir=str(ROOT / "data/raw"))
    pool = real_seed_sets(data, 0)["pool.jsonl"]
    evaluation = {
        "mbpp": datasets.load_mbpp("test", ROOT / "data/raw"),
        "humaneval": datasets.load_humaneval(),
    }
    assert check_disjoint(pool, evaluation) == {"mbpp": 500, "humaneval": 164}
    first = pool[: params["sample"].limit]
    assert all(r["task_id"].startswith("Mbpp/") and r["canonical_solution"] for r in first)
    add_references(first, [[]] * len(first), "pool.jsonl")
    train = datasets.load_mbpp("train", ROOT / "data/raw")
    with pytest.raises(CodealignError, match="602 = mbpp:217"):
        check_disjoint(train, evaluation)
