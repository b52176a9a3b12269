"""The DPO pool's guards, the policy resolver, and batched seeded sampling."""

import json

import pytest
from dpo_support import lora_adapter, tiny_model, world_texts

from codealign.dpo.sample import check_disjoint, pool_problems, sample_completions
from codealign.errors import CodealignError
from codealign.evaluation.chat import question as question_of
from codealign.evaluation.policy import load_policy, resolve_policy


def test_the_tiny_world_pool_is_disjoint_from_tinyeval(small_world):
    pool = [t.to_problem() for t in small_world.pool]
    evals = [t.to_problem() for t in small_world.eval]
    assert check_disjoint(pool, {"tinyeval": evals}) == {"tinyeval": len(evals)}


def test_an_eval_problem_in_the_pool_fails_the_stage(small_world):
    pool = [t.to_problem() for t in small_world.pool[:5]]
    leaked = dict(small_world.eval[3].to_problem())
    leaked["task_id"] = "tinypool/leak"
    leaked["instruction"] = "  " + leaked["instruction"].upper() + "\n"  # case and spacing differ
    leaked["prompt"] = "def other():\n    pass\n"
    evals = [t.to_problem() for t in small_world.eval]
    with pytest.raises(
        CodealignError,
        match=r"overlaps the evaluation sets in 1 problems: "
        r"tinypool/leak = tinyeval:tinyeval/3",
    ):
        check_disjoint([*pool, leaked], {"tinyeval": evals})


def test_a_pool_task_without_tests_is_refused(small_world):
    records = [t.to_problem() for t in small_world.pool[:3]]
    assert len(pool_problems(records, "pool.jsonl")) == 3
    mbpp = {
        "task_id": 7,
        "text": "Add two numbers.",
        "code": "def add(a, b): return a + b",
        "test_list": [],
        "test_setup_code": "",
    }
    with pytest.raises(CodealignError, match=r"pool.jsonl:4: task 7 has no tests"):
        pool_problems([*records, mbpp], "pool.jsonl")
    no_asserts = {
        **records[0],
        "task_id": "tinypool/x",
        "test": "def check(candidate):\n    pass\n",
    }
    with pytest.raises(CodealignError, match=r"pool.jsonl:2: task tinypool/x has no tests"):
        pool_problems([records[0], no_asserts], "pool.jsonl")
    with pytest.raises(CodealignError, match="the DPO pool is empty"):
        pool_problems([], "pool.jsonl")


def test_questions_follow_the_sft_format(small_world):
    task = small_world.pool[0].to_problem()
    assert question_of(task) == task["instruction"]
    mbpp = {"task_id": 2, "text": "Add.", "test_list": ["assert add(1, 2) == 3"]}
    assert question_of(mbpp) == '"""\nAdd.\nassert add(1, 2) == 3\n"""\n'
    humaneval = {"task_id": "HumanEval/0", "prompt": "def f():\n", "test": ""}
    assert question_of(humaneval) == (
        "Complete the following Python function. Answer with the whole function.\n\n"
        "```python\ndef f():\n```"
    )


def test_policy_paths_resolve_or_fail_clearly(small_world, tmp_path):
    base = tiny_model(tmp_path / "base", world_texts(small_world))
    adapter = lora_adapter(base, tmp_path / "adapter")
    assert resolve_policy(base).adapters == ()
    spec = resolve_policy(adapter)
    assert spec.base_dir == base and spec.adapters == (adapter,)
    sft = tmp_path / "sft"
    for i in range(2):
        lora_adapter(base, sft / f"adapter_{i}", seed=i)
    (sft / "router.json").write_text(json.dumps({"k": 2}))
    with pytest.raises(CodealignError, match="2 specialists, but sample.policy is 'single'"):
        resolve_policy(sft, "single")
    assert resolve_policy(sft, "routed").routed
    with pytest.raises(CodealignError, match="not a policy"):
        resolve_policy(tmp_path)
    with pytest.raises(CodealignError, match="sample.policy must be one of"):
        resolve_policy(base, "best")


@pytest.mark.slow
def test_sampling_gives_n_seeded_answers_per_question(small_world, tmp_path):
    base = tiny_model(tmp_path / "base", world_texts(small_world))
    policy = load_policy(resolve_policy(lora_adapter(base, tmp_path / "adapter")))
    questions = [t.instruction for t in small_world.pool[:3]]
    kwargs = dict(n=3, temperature=1.0, max_new_tokens=8, batch_size=4, seed=5, progress=False)
    answers, routes = sample_completions(policy, questions, **kwargs)
    assert [len(a) for a in answers] == [3, 3, 3] and routes == [0, 0, 0]
    again, _ = sample_completions(policy, questions, **kwargs)
    assert again == answers


def test_vllm_backend_without_cuda_is_a_clear_error(small_world, tmp_path):
    from codealign.dpo.sample import sample_with_vllm
    from codealign.evaluation.policy import PolicySpec

    with pytest.raises(CodealignError, match="sample.backend 'vllm' needs"):
        sample_with_vllm(
            PolicySpec(tmp_path),
            ["q"],
            n=2,
            temperature=1.0,
            max_new_tokens=4,
            seed=0,
            dtype="float32",
        )
