"""Semantic dedup, decontamination and the split, as a user of the dedup stage sees them."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.curation.dedup import (
    EvalTask,
    approximate_dedup,
    ast_keys,
    ast_twins,
    brute_force_dedup,
    curate,
    embedding_contamination,
    eval_task_from_record,
    faiss_available,
    greedy_dedup,
    ngram_contamination,
    read_sft_jsonl,
    require_no_twins,
    split_validation,
)
from codealign.errors import CodealignError
from codealign.lm.embedding import l2_normalize
from codealign.params.curation import DedupParams


def planted(n: int, dim: int, seed: int = 0, dup_share: float = 0.4) -> np.ndarray:
    """Unit rows where some rows are copies of others at cosines spread over [0.85, 1]."""
    rng = np.random.default_rng(seed)
    n_base = n - int(n * dup_share)
    base = l2_normalize(rng.standard_normal((n_base, dim)))
    src = rng.integers(0, n_base, n - n_base)
    cos = rng.uniform(0.85, 1.0, (n - n_base, 1))
    noise = rng.standard_normal((n - n_base, dim))
    noise -= (noise * base[src]).sum(axis=1, keepdims=True) * base[src]
    copies = cos * base[src] + np.sqrt(1 - cos**2) * l2_normalize(noise)
    rows = np.concatenate([base, copies])
    rng.shuffle(rows)
    return l2_normalize(rows)


def unit(*rows) -> np.ndarray:
    return l2_normalize(np.asarray(rows, dtype=np.float32))


# ---------------------------------------------------------------------------- exact dedup


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 500, 1000, 5000])
def test_keep_set_equals_the_brute_force_reference(chunk_size):
    x = planted(1000, 32, seed=chunk_size)
    expected = brute_force_dedup(x, 0.95)
    result = greedy_dedup(x, 0.95, chunk_size=chunk_size, kept_block=37)
    np.testing.assert_array_equal(result.kept, expected)
    assert len(expected) < 1000  # the data really has duplicates
    assert sorted(set(range(1000)) - set(expected.tolist())) == result.dropped


def test_a_duplicate_across_a_chunk_boundary_is_found():
    rng = np.random.default_rng(1)
    x = l2_normalize(rng.standard_normal((20, 64)))
    x[10] = x[3]
    result = greedy_dedup(x, 0.95, chunk_size=10)
    assert 10 not in result.kept and result.matched[10][0] == 3
    assert result.matched[10][1] == pytest.approx(1.0, abs=1e-5)


def test_only_kept_items_remove_later_ones():
    # a~b and b~c exceed the threshold, a and c do not: b goes, so c stays.
    a, b, c = unit([1, 0, 0], [0.97, 0.2431, 0], [0.88, 0.4750, 0])
    assert a @ b > 0.95 and b @ c > 0.95 and a @ c < 0.95
    for chunk in (1, 2, 3):
        result = greedy_dedup(np.stack([a, b, c]), 0.95, chunk_size=chunk)
        assert result.kept.tolist() == [0, 2]
        assert result.matched[1][0] == 0


def test_the_first_of_a_group_is_kept_whatever_the_order():
    a, b, other = unit([1, 0, 0], [0.99, 0.141, 0], [0, 0, 1])
    assert greedy_dedup(np.stack([a, b, other]), 0.95).kept.tolist() == [0, 2]
    assert greedy_dedup(np.stack([other, b, a]), 0.95).kept.tolist() == [0, 1]


def test_a_dropped_item_names_its_most_similar_kept_item():
    x = unit([1, 0, 0], [0, 1, 0], [0.3, 0.99, 0])
    result = greedy_dedup(x, 0.9)
    kept_index, similarity = result.matched[2]
    assert kept_index == 1 and similarity == pytest.approx(float(x[1] @ x[2]), rel=1e-6)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "high"])
def test_a_threshold_outside_0_1_is_rejected_by_key(bad):
    with pytest.raises(CodealignError, match=r"dedup\.threshold must be a number in \(0, 1\]"):
        DedupParams.from_dict({"threshold": bad}, "dedup")


def test_the_library_rejects_a_bad_threshold_too():
    with pytest.raises(CodealignError, match="dedup.threshold"):
        greedy_dedup(unit([1, 0]), 0)


def test_unknown_eval_sets_are_rejected_by_key():
    with pytest.raises(CodealignError, match=r"dedup\.eval_sets\[0\] must be one of"):
        DedupParams.from_dict({"eval_sets": ["gsm8k"]}, "dedup")


# ---------------------------------------------------------------------------- approximate


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")
def test_the_approximate_path_matches_exact_on_planted_duplicates():
    x = planted(4000, 48, seed=3)
    exact = greedy_dedup(x, 0.95)
    approx = approximate_dedup(x, 0.95, nprobe=8)
    np.testing.assert_array_equal(approx.kept, exact.kept)


def test_without_faiss_the_approximate_path_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(CodealignError, match="faiss-cpu"):
        approximate_dedup(unit([1, 0], [0, 1]), 0.95)


# ---------------------------------------------------------------------------- decontamination

TASK = EvalTask(
    task_id="tinyeval/7",
    question="Write a function count_vowels(s) that returns how many vowels the string s has.",
    code="def count_vowels(s):\n    return sum(1 for ch in s if ch in 'aeiou')\n",
    source="tinyeval",
)


def test_ngram_overlap_names_the_eval_task_it_matched():
    leaked = f"{TASK.question}\n{TASK.code}"
    generic = "Write a function that returns how many items a list has.\ndef f(xs): return len(xs)"
    hits = ngram_contamination([generic, leaked], [TASK], n=5, threshold=0.5)
    assert list(hits) == [1]
    assert hits[1].task.task_id == "tinyeval/7" and hits[1].score == pytest.approx(1.0)


def test_a_short_shared_phrase_does_not_flag_a_record():
    record = "Write a function count_vowels(s) that returns the first letter of s."
    assert ngram_contamination([record], [TASK], n=5, threshold=0.5) == {}


def test_embedding_contamination_names_the_closest_task():
    tasks = [TASK, EvalTask("tinyeval/8", "q", "", "tinyeval")]
    task_vecs = unit([1, 0, 0], [0, 1, 0])
    records = unit([0, 0.1, 1], [0.05, 0.999, 0])
    hits = embedding_contamination(records, task_vecs, tasks, threshold=0.9)
    assert list(hits) == [1] and hits[1].task.task_id == "tinyeval/8"


# ---------------------------------------------------------------------------- split and curate


def records_for(n: int, source: str = "s3") -> list[dict]:
    return [
        {
            "id": f"{source}-{i}",
            "question": f"q{i}",
            "code": "pass",
            "keywords": [],
            "source": source,
        }
        for i in range(n)
    ]


def test_the_split_is_seeded_disjoint_and_keeps_order():
    records = records_for(200)
    train, val = split_validation(records, 0.1, seed=0)
    assert len(val) == 20 and len(train) == 180
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in val)
    assert train == [r for r in records if r in train]  # input order
    assert split_validation(records, 0.1, seed=0) == (train, val)
    assert split_validation(records, 0.1, seed=1)[1] != val
    # Adding records leaves the old ones mostly on the same side.
    _, val_more = split_validation(records + records_for(20, "s4"), 0.1, seed=0)
    assert len({r["id"] for r in val} & {r["id"] for r in val_more}) >= 15


def fake_embed(texts: list[str]) -> np.ndarray:
    """Texts that share their first word are near-duplicates; others are orthogonal-ish."""
    rows = []
    for text in texts:
        first = text.split()[0] if text.split() else ""
        rng = np.random.default_rng(abs(hash(first)) % 2**32)
        base = rng.standard_normal(64)
        jitter = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(64) * 0.05
        rows.append(base + jitter)
    return l2_normalize(np.asarray(rows))


def test_curate_logs_every_removal_with_what_it_matched():
    records = [
        {"id": "a", "question": "alpha one", "code": "x=1", "keywords": [], "source": "s1_star"},
        {"id": "b", "question": "alpha two", "code": "x=2", "keywords": [], "source": "s3"},
        {"id": "a", "question": "other", "code": "x=3", "keywords": [], "source": "s4"},
        {"id": "c", "question": TASK.question, "code": TASK.code, "keywords": [], "source": "s5"},
        {"id": "d", "question": "delta", "code": "x=4", "keywords": [], "source": "s5"},
    ]
    params = DedupParams(decontam_ngram_size=5, validation_fraction=0.0)
    out = curate(records, [TASK], fake_embed, params, seed=0, progress=False)
    by_id = {(r["id"], r["reason"]): r for r in out.removed}
    assert by_id[("a", "duplicate_id")]["matched_id"] == "a"
    assert by_id[("c", "contaminated_ngram")]["matched_task_id"] == "tinyeval/7"
    assert by_id[("b", "near_duplicate")]["matched_id"] == "a"
    assert [r["id"] for r in out.train] == ["a", "d"] and out.validation == []
    assert out.metrics["before"] == {"s1_star": 1, "s3": 1, "s4": 1, "s5": 2}
    assert out.metrics["after"] == {"s1_star": 1, "s5": 1}
    assert out.metrics["removed"] == {
        "duplicate_id": 1,
        "contaminated_ngram": 1,
        "contaminated_ast": 0,
        "contaminated_embedding": 0,
        "near_duplicate": 1,
    }


# ---------------------------------------------------------------------------- AST key

HELD = eval_task_from_record(
    {
        "task_id": "tinyeval/3",
        "prompt": 'def compute(name):\n    """Return \'tree\' followed by name."""\n',
        "canonical_solution": "    return 'tree' + name\n",
        "entry_point": "compute",
    },
    "tinyeval",
    "tinyeval.jsonl:4",
)


def test_the_ast_key_sees_through_names_and_docstrings_but_not_constants_or_builtins():
    twin = 'def task(text):\n    """Prepend a word."""\n    return \'tree\' + text\n'
    assert ast_keys(twin) == HELD.ast_keys and len(HELD.ast_keys) == 1
    annotated = "def f(xs: list) -> int:\n    total = sum(xs)\n    return total\n"
    assert ast_keys(annotated) == ast_keys("def g(v):\n    out = sum(v)\n    return out\n")
    assert ast_keys("def task(text):\n    return 'moon' + text\n") != HELD.ast_keys
    assert ast_keys("def f(xs):\n    return sum(xs)\n") != ast_keys(
        "def f(xs):\n    return len(xs)\n"
    )
    # Argument order is part of what a function computes.
    assert ast_keys("def f(a, b):\n    return a - b\n") != ast_keys(
        "def f(a, b):\n    return b - a\n"
    )
    assert ast_keys("def broken(:\n") == frozenset()


def test_a_renamed_twin_of_an_eval_task_is_removed_with_its_own_reason():
    twin = {
        "id": "s5-9",
        "question": "Write a function task(text) that returns 'tree' followed by text.",
        "code": "def task(text):\n    return 'tree' + text\n\nassert task('a') == 'treea'\n",
        "keywords": [],
        "source": "s5",
    }
    other = {**twin, "id": "s5-10", "code": "def task(text):\n    return 'moon' + text\n"}
    params = DedupParams(validation_fraction=0.0)
    out = curate([twin, other], [HELD], fake_embed, params, seed=0, progress=False)
    (removed,) = out.removed
    assert removed["id"] == "s5-9" and removed["reason"] == "contaminated_ast"
    assert removed["matched_task_id"] == "tinyeval/3"
    assert removed["matched_eval_set"] == "tinyeval"
    assert [r["id"] for r in out.train] == ["s5-10"]
    assert out.metrics["removed"]["contaminated_ast"] == 1


def test_a_training_set_with_a_renamed_twin_fails_loudly():
    programs = ["def f(x):\n    return x + 1\n", "def solve(s):\n    return 'tree' + s\n"]
    assert set(ast_twins(programs, [HELD])) == {1}
    with pytest.raises(CodealignError, match=r"pool: 1 programs .* \(#1\) of tinyeval tinyeval/3"):
        require_no_twins(programs, [HELD], "pool")
    require_no_twins(programs[:1], [HELD], "pool")


def test_a_record_missing_a_field_names_file_and_line(tmp_path):
    path = tmp_path / "s3.jsonl"
    path.write_text(
        '{"id": 1, "question": "q", "code": "c", "keywords": [], "source": "s3"}\n'
        '{"id": 2, "question": "q", "keywords": [], "source": "s3"}\n'
    )
    with pytest.raises(CodealignError, match=r"s3\.jsonl:2: missing field 'code'"):
        read_sft_jsonl(path)


# ---------------------------------------------------------------------------- the stage


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def stage_files(tmp_path):
    def sft(rid, question, source):
        return {
            "id": rid,
            "question": question,
            "code": "def f():\n    return 1\n",
            "keywords": ["Integer"],
            "source": source,
        }

    inputs = {
        "s1_star.jsonl": [
            sft("s1-0", "Return the sum of two integers a and b.", "s1_star"),
            sft("s1-1", "Reverse a string and return it.", "s1_star"),
        ],
        "s3.jsonl": [
            sft("s3-0", "Return the sum of two integers a and b.", "s3"),
            sft("s3-1", "Count the vowels in a word.", "s3"),
            sft("s3-2", "Sort a list of numbers in descending order.", "s3"),
        ],
    }
    for name, records in inputs.items():
        write_jsonl(tmp_path / name, records)
    write_jsonl(
        tmp_path / "tinyeval.jsonl",
        [
            {
                "task_id": "tinyeval/0",
                "prompt": 'def is_prime(n):\n    """Is n prime?"""\n',
                "canonical_solution": "    return n > 1\n",
                "test": "",
                "entry_point": "is_prime",
            },
            {
                "task_id": "tinyeval/1",
                "prompt": "Count the vowels in a word.",
                "canonical_solution": "",
                "test": "",
                "entry_point": "f",
            },
        ],
    )
    return tmp_path


def run_stage(tmp_path, dedup_params):
    main = stage("dedup")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 0, "k": 1, "dedup": dedup_params}))
    args = [
        "--params",
        str(params),
        "--input",
        str(tmp_path / "s1_star.jsonl"),
        "--input",
        str(tmp_path / "s3.jsonl"),
        "--eval-file",
        str(tmp_path / "tinyeval.jsonl"),
        "--out",
        str(tmp_path / "dedup"),
        "--metrics",
        str(tmp_path / "metrics.json"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    return CliRunner().invoke(main, args)


def test_the_stage_writes_train_validation_removed_and_metrics(stage_files):
    result = run_stage(stage_files, {"validation_fraction": 0.34})
    assert result.exit_code == 0, result.output
    out = stage_files / "dedup"
    train = read_sft_jsonl(out / "train.jsonl")
    validation = read_sft_jsonl(out / "validation.jsonl")
    removed = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
    reasons = {
        r["id"]: (r["reason"], r.get("matched_id") or r.get("matched_task_id")) for r in removed
    }
    assert reasons == {
        "s3-0": ("near_duplicate", "s1-0"),
        "s3-1": ("contaminated_embedding", "tinyeval/1"),
    }
    assert len(train) == 2 and len(validation) == 1
    metrics = json.loads((stage_files / "metrics.json").read_text())
    assert metrics["records_before"] == 5 and metrics["records_after"] == 3
    assert metrics["removed"]["near_duplicate"] == 1


def test_the_stage_reports_a_bad_threshold_in_one_line(stage_files):
    result = run_stage(stage_files, {"threshold": 1.5})
    assert result.exit_code == 2
    assert result.output.strip() == "error: dedup.threshold must be a number in (0, 1], got 1.5"
    assert not (stage_files / "dedup").exists()
