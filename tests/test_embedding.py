"""The embedding cache: reruns and additions encode only what is new, and vectors are unit rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from codealign.errors import CodealignError
from codealign.lm.embedding import Embedder, model_identity, resolve_model
from codealign.params.lm import BUNDLED_MODEL, EmbedParams


class CountingEncoder:
    """A deterministic stand-in for a model that records every text it is asked to encode."""

    def __init__(self, dim: int = 16, fail_after: int | None = None) -> None:
        self.dim = dim
        self.seen: list[str] = []
        self.batch_texts: list[list[str]] = []
        self.batches = 0
        self.fail_after = fail_after

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.batches += 1
        self.seen.extend(texts)
        self.batch_texts.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim) * 3)
        return np.asarray(rows, dtype=np.float32)


def make_embedder(cache_dir, encoder, prefix: str = "", batch_size: int = 4, **kwargs) -> Embedder:
    params = EmbedParams(prefix=prefix, batch_size=batch_size)
    return Embedder(
        params, cache_dir, encoder=encoder, encoder_identity="counting", progress=False, **kwargs
    )


TEXTS = [f"question number {i}" for i in range(10)]


def test_vectors_are_unit_float32_rows_in_input_order(tmp_path):
    vectors = make_embedder(tmp_path, CountingEncoder()).embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (10, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    single = make_embedder(None, CountingEncoder()).embed([TEXTS[3]])
    np.testing.assert_allclose(vectors[3], single[0], rtol=1e-6)


def test_a_rerun_encodes_nothing_and_returns_the_same_vectors(tmp_path):
    first = make_embedder(tmp_path, CountingEncoder()).embed(TEXTS)
    encoder = CountingEncoder()
    again = make_embedder(tmp_path, encoder)
    np.testing.assert_array_equal(again.embed(TEXTS), first)
    assert encoder.seen == [] and again.calls == 0


def test_additions_encode_only_the_new_texts(tmp_path):
    make_embedder(tmp_path, CountingEncoder()).embed(TEXTS)
    encoder = CountingEncoder()
    embedder = make_embedder(tmp_path, encoder)
    embedder.embed(TEXTS + ["brand new one", "and another"])
    assert sorted(encoder.seen) == ["and another", "brand new one"]
    assert embedder.texts_encoded == 2


def test_repeated_texts_in_one_call_are_encoded_once(tmp_path):
    encoder = CountingEncoder()
    vectors = make_embedder(tmp_path, encoder).embed(["same", "same", "other", "same"])
    assert sorted(encoder.seen) == ["other", "same"]
    np.testing.assert_array_equal(vectors[0], vectors[3])


def test_batches_group_texts_of_similar_length_and_rows_keep_input_order(tmp_path):
    texts = ["x" * n for n in (3, 40, 7, 1, 25, 12, 40, 2, 9)]
    texts[6] = "y" * 40  # two texts of the same length keep their order
    encoder = CountingEncoder()
    vectors = make_embedder(tmp_path, encoder, batch_size=3).embed(texts)
    lengths = [[len(t) for t in batch] for batch in encoder.batch_texts]
    assert lengths == [[40, 40, 25], [12, 9, 7], [3, 2, 1]]
    assert encoder.batch_texts[0][:2] == [texts[1], texts[6]]
    alone = make_embedder(None, CountingEncoder())
    for i, text in enumerate(texts):
        np.testing.assert_allclose(vectors[i], alone.embed([text])[0])


def test_the_prefix_is_part_of_the_key(tmp_path):
    make_embedder(tmp_path, CountingEncoder()).embed(TEXTS)
    encoder = CountingEncoder()
    make_embedder(tmp_path, encoder, prefix="query: ").embed(TEXTS)
    assert encoder.seen == ["query: " + t for t in TEXTS]


def test_a_crash_mid_run_keeps_the_flushed_vectors(tmp_path):
    crashing = make_embedder(tmp_path, CountingEncoder(fail_after=2), flush_every=4)
    with pytest.raises(KeyboardInterrupt):
        crashing.embed(TEXTS)
    encoder = CountingEncoder()
    make_embedder(tmp_path, encoder).embed(TEXTS)
    # Two batches of 4 were flushed before the crash; only the last 2 texts remain.
    assert encoder.seen == TEXTS[8:]


def test_a_half_written_shard_is_ignored(tmp_path):
    embedder = make_embedder(tmp_path, CountingEncoder())
    embedder.embed(TEXTS)
    shard_dir = embedder.cache.directory
    keys_file = next(shard_dir.glob("shard-*.keys"))
    keys_file.write_bytes(keys_file.read_bytes()[:-5])
    encoder = CountingEncoder()
    make_embedder(tmp_path, encoder).embed(TEXTS)
    assert sorted(encoder.seen) == sorted(TEXTS)


def test_empty_input_gives_an_empty_array(tmp_path):
    assert make_embedder(tmp_path, CountingEncoder()).embed([]).shape[0] == 0


def test_the_bundled_model_resolves_to_the_package_directory():
    path = resolve_model(BUNDLED_MODEL)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    with pytest.raises(CodealignError, match="embed.model: unknown bundled model"):
        resolve_model("bundled:e5-base-v2")
    with pytest.raises(CodealignError, match="not a model directory"):
        resolve_model("./no/such/model")


def test_model_identity_follows_the_weights(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.bin").write_bytes(b"\x00" * 64)
    memo = tmp_path / "memo.json"
    first = model_identity(str(model), memo)
    assert model_identity(str(model), memo) == first
    (model / "weights.bin").write_bytes(b"\x01" * 64)  # same size, new content
    assert model_identity(str(model), memo) != first


def test_bad_embed_params_name_the_key():
    with pytest.raises(CodealignError, match=r"embed\.batch_size must be"):
        EmbedParams.from_dict({"batch_size": 0}, "embed")


def test_the_bundled_model_embeds_offline_and_a_cached_rerun_never_loads_it(tmp_path):
    texts = [
        "Write a function that returns the sum of a list of integers.",
        "Write a function returning the sum of all integers in a list.",
        "Reverse the characters of a string.",
    ]
    embedder = Embedder(EmbedParams(), tmp_path, progress=False)
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    rerun = Embedder(EmbedParams(), tmp_path, progress=False)
    np.testing.assert_array_equal(rerun.embed(texts), vectors)
    assert rerun.calls == 0 and rerun._encoder is None
