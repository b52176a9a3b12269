"""One chat format: every path renders a record to the same prompt and reads programs alike;
serving never imports training."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_specialists import make_base_model

from codealign.evaluation import chat

ROOT = Path(__file__).resolve().parents[1]

TINYEVAL = {
    "task_id": "tinyeval/1",
    "instruction": "Write a function add_1(x) that returns x plus 1.",
    "prompt": 'def add_1(x):\n    """Return x plus 1."""\n',
    "test": "def check(candidate):\n    assert candidate(1) == 2\n",
    "entry_point": "add_1",
}
HUMANEVAL = {"task_id": "HumanEval/0", "prompt": 'def f(x):\n    """Return x."""\n'}
MBPP = {"task_id": 2, "text": "Add two numbers.", "test_list": ["assert add(1, 2) == 3"]}
MBPP_PLUS = {"task_id": "Mbpp/2", "prompt": '"""\nAdd two numbers.\nassert add(1, 2) == 3\n"""\n'}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_base_model(tmp_path_factory.mktemp("m") / "base"))


def test_questions_are_the_evaluate_stage_wording():
    assert chat.question(TINYEVAL) == TINYEVAL["instruction"]
    assert chat.question(HUMANEVAL) == (
        "Complete the following Python function. Answer with the whole function.\n\n"
        f"```python\n{HUMANEVAL['prompt']}```"
    )
    assert chat.question(MBPP) == '"""\nAdd two numbers.\nassert add(1, 2) == 3\n"""\n'
    assert chat.question(MBPP_PLUS) == MBPP_PLUS["prompt"]
    with pytest.raises(Exception, match="task 'x': no question text"):
        chat.question({"task_id": "x"})


def test_one_record_renders_to_the_same_prompt_on_every_path(tokenizer, tmp_path):
    from codealign.dpo.pairs import dpo_example, tokenize_pair
    from codealign.dpo.sample import sample_records
    from codealign.evaluation.evaluate import Benchmark, benchmark_questions
    from codealign.specialists.sft import to_conversation

    for record in (TINYEVAL, HUMANEVAL, MBPP, MBPP_PLUS):
        question = chat.question(record)
        expected = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        # Evaluation (and the evaluate stage): the benchmark's questions, rendered.
        bench = Benchmark("b", [record], [record.get("prompt", "")], False)
        (asked,) = benchmark_questions(bench)
        assert chat.render(tokenizer, asked) == expected
        # DPO sampling: the question stored with each sample, rendered.
        (sampled,) = sample_records([record], [["answer"]], [0])
        assert chat.render(tokenizer, sampled["question"]) == expected
        # SFT formatting: a record whose question is the same text.
        sft = to_conversation({"id": "1", "question": question, "code": "x = 1\n"})
        assert (
            tokenizer.apply_chat_template(sft["prompt"], tokenize=False, add_generation_prompt=True)
            == expected
        )
        # DPO pairs: the conversational prompt TRL trains on, and its token ids.
        pair = {"question": sampled["question"], "chosen": "a = 1\n", "rejected": "b = 2\n"}
        assert (
            tokenizer.apply_chat_template(
                dpo_example(pair)["prompt"], tokenize=False, add_generation_prompt=True
            )
            == expected
        )
        ids = tokenize_pair(tokenizer, pair)["prompt_ids"]
        assert ids == tokenizer(expected, add_special_tokens=False)["input_ids"][: len(ids)]


def test_every_path_takes_the_same_program_from_an_answer():
    from codealign.edits.lintseq_eval import decode_answer

    answers = [
        "Here:\n```python\ndef f():\n    return 1\n```\nDone.",
        "```\ndef f():\n    return 1\n\n\n```",
        "def f():\n    return 1",
        "```python\ndef f():\n    return 1\n",  # cut off by the token budget
    ]
    for answer in answers:
        assert chat.program(answer) == "def f():\n    return 1\n"
        assert decode_answer(answer, "code", "<|diff|>")["completion"] == chat.program(answer)


def test_serving_does_not_import_training():
    """Routing's import closure (module level and inside functions, run for real) holds
    the adapter-metadata owner and not the sft training module."""
    code = (
        "import sys, json\n"
        "import codealign.specialists.routing as r\n"
        "import codealign.evaluation.policy, codealign.evaluation.evaluate\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('codealign'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert "codealign.specialists.adapters" in loaded
    assert "codealign.specialists.sft" not in loaded
    # Function-level imports too: the static closure, following every import statement.
    assert "codealign.specialists.sft" not in static_closure("codealign.specialists.routing")
    assert "codealign.specialists.sft" not in static_closure("codealign.evaluation.policy")


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def static_closure(start: str) -> set[str]:
    """Every codealign module `start` reaches by import statements anywhere in its code."""
    import ast

    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        # codealign.sections imports every module only to register its params section
        # (the registry's import circle); it is not a path by which code is used.
        if name in seen or path is None or name == "codealign.sections":
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("codealign")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("codealign"):
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]
    return seen
