"""Sampling: stopping a row at the end of its function changes none of the completions."""

import re

import pytest

from codealign.lm.generation import complete_functions, generate, truncate_completion
from codealign.params.pretraining import BaseModelParams
from codealign.pretraining.base_model import build_model, train_tokenizer

CODE = [
    'def add(a, b):\n    """Return a plus b."""\n    return a + b\n\nprint(add(1, 2))\n',
    "def rev(xs):\n    out = []\n    for x in xs:\n        out.insert(0, x)\n    return out\n",
    "x = 3\nif x > 2:\n    y = x * 2\nelse:\n    y = 0\n",
]
PROMPTS = ["def add(a, b):\n", "def rev(xs):\n    out = []\n", "def f(x):\n    if x:\n"]


@pytest.fixture(scope="module")
def untrained():
    tokenizer = train_tokenizer(CODE * 20, 300)
    params = BaseModelParams(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    return tokenizer, build_model(params, tokenizer, seed=0).eval()


def _forward_calls(model, call):
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        return call(), len(calls)
    finally:
        handle.remove()


OPTIONS = {"max_new_tokens": 48, "batch_size": 6, "seed": 5, "progress": False}


@pytest.mark.parametrize(("temperature", "n"), [(0.0, 1), (1.0, 6)])
def test_stopping_at_the_function_end_changes_no_completion(untrained, temperature, n):
    tokenizer, model = untrained
    options = {"n": n, "temperature": temperature, **OPTIONS}

    raw = generate(model, tokenizer, PROMPTS, **options)
    cut = complete_functions(model, tokenizer, PROMPTS, **options)

    assert cut == [[truncate_completion(text) for text in texts] for texts in raw]
    if temperature:
        assert any(truncate_completion(t) != t for texts in raw for t in texts)


def test_a_batch_ends_when_every_row_has_matched_the_stop_pattern(untrained):
    tokenizer, model = untrained
    options = {"n": 6, "temperature": 1.0, **OPTIONS}
    letter = re.compile("[a-z]")

    raw, full_steps = _forward_calls(model, lambda: generate(model, tokenizer, PROMPTS, **options))
    stopped, steps = _forward_calls(
        model, lambda: generate(model, tokenizer, PROMPTS, stop=letter, **options)
    )

    batches = len(PROMPTS) * 6 // 6
    assert full_steps == 48 * batches
    assert steps < full_steps / 4
    for texts, stopped_texts in zip(raw, stopped, strict=True):
        for text, short in zip(texts, stopped_texts, strict=True):
            assert letter.search(short) and len(short) < len(text)
            # Up to a byte sequence the stop cut in half, the row is what it was.
            assert text.startswith(short.rstrip("\ufffd"))
