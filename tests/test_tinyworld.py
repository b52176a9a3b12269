import random
import subprocess
import sys

import pytest

from codealign.edits.lintseq import apply_edits, parse_target
from codealign.params.edits import LintseqParams
from codealign.tinyworld.corpus import edit_documents, make_corpus
from codealign.tinyworld.templates import KEYWORDS, LEVELS, TEMPLATES
from codealign.tinyworld.world import (
    SPLITS,
    build_world,
    catalogue,
    compose,
    function_key,
    instantiate,
    semantic_key,
    text_hash,
)


def test_same_seed_same_world_other_seed_other_world(small_world):
    again = build_world(seed=0, n_train=800, n_pool=150, n_eval=100, n_dev=60)
    assert [t.code for t in again.eval] == [t.code for t in small_world.eval]
    assert [t.code for t in again.dev] == [t.code for t in small_world.dev]
    assert [t.tests for t in again.train] == [t.tests for t in small_world.train]
    other = build_world(seed=1, n_train=800, n_pool=150, n_eval=100, n_dev=60)
    assert [t.code for t in other.eval] != [t.code for t in small_world.eval]


def test_splits_have_requested_sizes_and_unique_ids(small_world):
    sizes = [len(small_world.tasks[s]) for s in ("train", "pool", "dev", "eval")]
    assert sizes == [800, 150, 60, 100] and not small_world.shortfall
    ids = [t.task_id for s in SPLITS for t in small_world.tasks[s]]
    assert len(ids) == len(set(ids))


def test_splits_are_disjoint_by_text_and_by_semantic_and_function_key(small_world):
    hashes = {s: {text_hash(t.prompt) for t in small_world.tasks[s]} for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not hashes[a] & hashes[b], (a, b)
    small_world.check_disjoint()
    training = {t.semantic for s in ("train", "pool") for t in small_world.tasks[s]}
    training_fn = {t.function for s in ("train", "pool") for t in small_world.tasks[s]}
    for held in ("dev", "eval"):
        assert not {t.semantic for t in small_world.tasks[held]} & training
        assert not small_world.functions(held) & training_fn
    assert not small_world.functions("dev") & small_world.functions("eval")


def test_held_out_sets_hold_each_function_once_and_no_constant_free_template(small_world):
    constant_free = {
        t.name for t in TEMPLATES if semantic_key(t, t.constants(random.Random(0))).endswith("|")
    }
    assert {"add_pair", "is_even", "list_sum"} <= constant_free
    for held in (small_world.dev, small_world.eval):
        assert len({t.function for t in held}) == len(held)
        assert not {t.template for t in held} & constant_free


def test_semantic_key_ignores_names_and_unused_constants_and_equal_functions_share_a_key():
    by_name = {t.name: t for t in TEMPLATES}
    rng = random.Random(0)
    one = instantiate(by_name["str_suffix"], {"w": "tree", "v": "cat"}, rng, "")
    two = instantiate(by_name["str_suffix"], {"w": "tree", "v": "dog"}, rng, "")
    assert one.semantic == two.semantic == "str_suffix|w='tree'"
    assert one.function == two.function
    # x * 4 + 8 == (x + 2) * 4: two templates, one function.
    assert function_key(by_name["mul_add"], {"c": 4, "d": 8}) == function_key(
        by_name["add_mul"], {"c": 2, "d": 4}
    )
    assert function_key(by_name["is_multiple"], {"c": 2}) == function_key(by_name["is_even"], {})
    assert function_key(by_name["is_greater"], {"c": 15}) != function_key(
        by_name["is_greater"], {"c": 16}
    )
    functions, identities = catalogue(TEMPLATES)
    # is_multiple c=2 is is_even's function: train-only, never a held-out candidate.
    is_even = function_key(by_name["is_even"], {})
    assert identities.find(is_even) in identities.train_only and is_even not in functions
    # n * 5 and s * 5: two functions, one AST key, so one identity (one side of the split).
    times = identities.of(by_name["mul_const"], {"c": 5})
    assert times == identities.of(by_name["str_repeat"], {"c": 5})
    assert function_key(by_name["mul_const"], {"c": 5}) != function_key(
        by_name["str_repeat"], {"c": 5}
    )


def test_every_canonical_solution_passes_its_own_tests(small_world):
    tasks = small_world.train[:200] + small_world.pool[:100] + small_world.eval
    program = "\n".join(t.code + "\n" + "\n".join(t.tests) for t in tasks)
    # One subprocess, so a failing assert shows which task broke.
    result = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_wrong_solution_fails_the_tests(small_world):
    failures = 0
    for task in small_world.eval[:50]:
        wrong = task.prompt + "    return None\n"
        code = wrong + "\n".join(task.tests)
        failures += (
            subprocess.run([sys.executable, "-c", code], capture_output=True).returncode != 0
        )
    assert failures == 50


def test_tasks_have_three_to_five_tests_and_known_keywords(small_world):
    for task in small_world.train + small_world.eval:
        assert 3 <= len(task.tests) <= 5
        assert task.level in LEVELS
        assert set(task.keywords) <= set(KEYWORDS)
        assert task.instruction.startswith(f"Write a function {task.entry_point}(")


def test_problem_record_is_humaneval_format(small_world):
    task = small_world.eval[0]
    record = task.to_problem()
    assert {"task_id", "prompt", "canonical_solution", "test", "entry_point"} <= set(record)
    namespace: dict = {}
    exec(record["prompt"] + record["canonical_solution"] + "\n" + record["test"], namespace)
    namespace["check"](namespace[record["entry_point"]])


def test_eval_spreads_over_templates_families_and_levels(small_world):
    templates = {t.template for t in small_world.eval}
    assert len(templates) >= 20
    families = {t.family for t in small_world.eval}
    assert families >= {"arithmetic", "conditionals", "lists", "strings"}
    assert {t.level for t in small_world.eval} == set(LEVELS)


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_corpus_code_share_is_honoured(small_world, share):
    code = [t.code for t in small_world.train]
    docs = make_corpus(code, share, 200_000, seed=0)
    code_chars = sum(len(d["text"]) for d in docs if d["kind"] == "code")
    total = sum(len(d["text"]) for d in docs)
    assert total >= 200_000
    assert abs(code_chars / total - share) < 0.01


@pytest.mark.parametrize("edit_share", [0.0, 0.2, 1.0])
def test_corpus_edit_share_is_honoured_and_each_edit_document_rebuilds_its_program(
    small_world, edit_share
):
    code = [t.code for t in small_world.train]
    edits = edit_documents(code, LintseqParams(), seed=0)
    assert len(edits) == len(set(code))  # every tiny-world function lints
    docs = make_corpus(code, 0.5, 200_000, 0, edits, edit_share)
    chars = {k: sum(len(d["text"]) for d in docs if d["kind"] == k) for k in ("code", "edits")}
    assert abs((chars["code"] + chars["edits"]) / sum(len(d["text"]) for d in docs) - 0.5) < 0.01
    assert abs(chars["edits"] / (chars["code"] + chars["edits"]) - edit_share) < 0.02
    programs = set(code)
    for doc in (d["text"] for d in docs if d["kind"] == "edits"):
        assert doc.startswith("@@ -0,0 +1,")
        assert apply_edits(parse_target(doc)) in programs
    if edit_share == 0.0:  # the knob off leaves the corpus as it was without it
        assert docs == make_corpus(code, 0.5, 200_000, seed=0)


def test_corpus_rejects_an_edit_share_without_edit_documents(small_world):
    with pytest.raises(ValueError, match="needs at least one of them"):
        make_corpus([t.code for t in small_world.train], 0.5, 10_000, 0, [], 0.2)


def test_corpus_never_contains_eval_dev_or_pool_code(small_world):
    docs = make_corpus([t.code for t in small_world.train], 0.5, 300_000, seed=0)
    corpus_hashes = {text_hash(d["text"]) for d in docs}
    for task in small_world.eval + small_world.dev + small_world.pool:
        assert text_hash(task.code) not in corpus_hashes


def test_compose_honours_keywords_and_refuses_impossible_requests():
    rng = random.Random(0)
    task = compose(["Array", "Filter", "Compare"], rng)
    assert task is not None and {"Array", "Filter"} <= set(task.keywords)
    assert compose(["Graph", "Tree", "Dijkstra"], rng) is None


def test_world_too_small_to_fill_train_or_pool_says_so():
    only = [t for t in TEMPLATES if t.name == "is_even"]  # constant-free: train only
    with pytest.raises(ValueError, match="cannot make enough distinct tasks"):
        build_world(seed=0, n_train=10, n_pool=10, n_eval=5, templates=only)


def test_a_held_out_set_that_cannot_be_filled_is_short_and_says_so(caplog):
    only = [t for t in TEMPLATES if t.name in ("str_head", "add_pair", "add_const")]
    world = build_world(seed=0, n_train=20, n_pool=1, n_eval=50, n_dev=50, templates=only)
    functions = {t.function for t in world.eval}
    assert len(functions) == len(world.eval) < 50  # short, never a repeat
    assert world.shortfall["eval"] == 50 - len(world.eval)
    assert "tinyeval holds" in caplog.text and "short of data.n_eval = 50" in caplog.text


def test_plain_names_change_the_surface_not_the_split():
    varied = build_world(seed=2, n_train=200, n_pool=30, n_eval=20, n_dev=10)
    plain = build_world(seed=2, n_train=200, n_pool=30, n_eval=20, n_dev=10, names="plain")
    for held in ("eval", "dev"):
        assert plain.functions(held) == varied.functions(held)
    for task in plain.eval + plain.pool:
        assert task.entry_point == task.template
        assert task.prompt.startswith(f"def {task.template}(")
    plain.check_disjoint()
    with pytest.raises(ValueError, match="names must be one of varied, plain"):
        build_world(seed=2, n_train=10, n_pool=1, n_eval=1, names="short")
