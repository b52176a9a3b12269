"""The hf backend on a tiny random Llama: batched, chat template, cached, context-safe."""

import pytest

from codealign.synth.backends import HFBackend, Request, ResponseCache

# Loading torch and transformers dominates; the backend itself takes a second.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from codealign.params.pretraining import BaseModelParams
    from codealign.pretraining.base_model import build_model, train_tokenizer

    texts = ["def f(x):\n    return x + 1\n", "### Question\nWrite f.\n### Code\n"] * 20
    tokenizer = train_tokenizer(texts, vocab_size=300)
    params = BaseModelParams.from_dict(
        {
            "hidden_size": 16,
            "num_layers": 1,
            "num_heads": 2,
            "intermediate_size": 32,
            "block_size": 32,
            "vocab_size": 300,
        },
        "base_model",
    )
    path = tmp_path_factory.mktemp("model")
    build_model(params, tokenizer, seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def requests(count, words=5):
    return [
        Request(f"r{i}", ({"role": "user", "content": f"Write f{i}. " * words},), 0.7, 6, i)
        for i in range(count)
    ]


def test_batched_answers_are_cached(tiny_model_dir, tmp_path):
    backend = HFBackend(
        str(tiny_model_dir), batch_size=2, cache=ResponseCache(tmp_path / "hf.sqlite")
    )
    first = backend.complete(requests(5), progress=False)
    assert len(first) == 5 and all(isinstance(r.text, str) for r in first)
    again = HFBackend(
        str(tiny_model_dir), batch_size=2, cache=ResponseCache(tmp_path / "hf.sqlite")
    )
    again._load = lambda: pytest.fail("a cached rerun must not load the model")
    second = again.complete(requests(5), progress=False)
    assert [r.text for r in second] == [r.text for r in first] and all(r.cached for r in second)


def test_prompt_longer_than_the_context_keeps_its_end(tiny_model_dir):
    backend = HFBackend(str(tiny_model_dir))
    tokenizer, model = backend._load()
    (request,) = requests(1, words=400)
    limit = model.config.max_position_embeddings
    text = backend.render(tokenizer, request, limit)
    assert text.startswith("<|user|>") is False and text.endswith("<|assistant|>\n")
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= limit
    (response,) = backend.complete([request], progress=False)
    assert isinstance(response.text, str)
