"""Routed inference: nearest-centroid routing, K adapters over one base, refusals, the CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny_specialists import make_base_model, make_router_dir, save_random_adapter

from codealign.cli import main as cli
from codealign.errors import CodealignError
from codealign.evaluation.chat import program as extract_code
from codealign.specialists.routing import Router

QUESTIONS = [
    "Write a function add_3(x) that returns x plus 3.",
    "Write a function rep_2(s) that returns the string s repeated 2 times.",
    "Write a function add_9(x) that returns x plus 9.",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A base model, a second base with other weights, and a K = 3 router over the first."""
    root = tmp_path_factory.mktemp("routing")
    base = make_base_model(root / "base", seed=0)
    other = make_base_model(root / "other", seed=1)
    centroids = np.eye(3, 8, dtype=np.float32)
    router_dir = make_router_dir(base, root / "sft", centroids)
    return root, base, other, router_dir


@pytest.fixture(scope="module")
def router(world):
    return Router(world[3])


def copy_router(world, name: str) -> Path:
    root, *_ = world
    target = root / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(world[3], target)
    return target


def test_one_base_model_in_memory_with_k_adapters(world, router):
    from transformers import AutoModelForCausalLM

    base_params = AutoModelForCausalLM.from_pretrained(world[1]).num_parameters()
    counts = router.parameter_counts()
    assert counts["base"] == base_params  # the base weights are held once, not K times
    per_adapter = save_random_adapter(world[1], world[0] / "probe", seed=9)
    assert counts["adapters"] == 3 * per_adapter
    assert sorted(router.model.peft_config) == ["cluster_0", "cluster_1", "cluster_2"]


def test_mixed_adapter_batch_matches_one_adapter_at_a_time(world, router):
    from peft import PeftModel

    from codealign.evaluation.chat import render as chat_prompt
    from codealign.lm.generation import load_causal_lm

    clusters = [2, 0, 1]
    mixed = router.sample(QUESTIONS, clusters=clusters, max_new_tokens=12)[1]
    grouped = router.sample(QUESTIONS, clusters=clusters, max_new_tokens=12, mixed=False)[1]
    assert mixed == grouped
    # The adapters differ, so the answer depends on the cluster a question is sent to.
    assert (
        len(
            {
                router.sample(QUESTIONS[:1], clusters=[c], max_new_tokens=12)[1][0][0]
                for c in range(3)
            }
        )
        > 1
    )
    # And each row got exactly what its own adapter alone gives.
    tokenizer, base = load_causal_lm(world[1])
    alone = PeftModel.from_pretrained(base, world[3] / "adapter_2").eval()
    encoded = tokenizer(
        chat_prompt(tokenizer, QUESTIONS[0]), return_tensors="pt", add_special_tokens=False
    )
    out = alone.generate(
        **encoded, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    assert (
        tokenizer.decode(out[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        == mixed[0][0]
    )


def _mixed_logits(router, names, mode):
    """Next-token logits of one mixed batch, through the gathered path or PEFT's."""
    import contextlib

    import torch

    from codealign.evaluation.chat import render as chat_prompt

    tokenizer = router.tokenizer
    tokenizer.padding_side = "left"
    prompts = [chat_prompt(tokenizer, q) for q in QUESTIONS]
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    clusters = [int(name.split("_")[1]) for name in names]
    context = router.gathered.rows(clusters) if mode == "gathered" else contextlib.nullcontext()
    extra = {"adapter_names": names} if mode == "peft" else {}
    with torch.no_grad(), context:
        return router.model(**encoded, **extra).logits


def test_gathered_lora_equals_pefts_mixed_batch_and_stores_nothing_twice(router):
    import torch

    assert router.gathered is not None and len(router.gathered.layers) > 0
    names = ["cluster_2", "cluster_0", "cluster_1"]
    gathered = _mixed_logits(router, names, "gathered")
    peft = _mixed_logits(router, names, "peft")
    assert torch.allclose(gathered, peft, atol=1e-5), (gathered - peft).abs().max()
    # PEFT's parameters are views of the stacked tensors, not copies of them.
    module, stacked_a, stacked_b, _ = router.gathered.layers[0]
    weight = module.lora_A["cluster_1"].weight
    assert weight.untyped_storage().data_ptr() == stacked_a.untyped_storage().data_ptr()
    # Outside `rows`, the layers are PEFT's own again.
    assert "forward" not in vars(module)


def test_adapters_of_different_ranks_fall_back_to_pefts_mixed_batch(world, tmp_path):
    target = copy_router(world, "mixed_ranks")
    shutil.rmtree(target / "adapter_1")
    save_random_adapter(world[1], target / "adapter_1", seed=5, r=8)
    from codealign.specialists.adapters import model_digest, write_adapter_meta

    write_adapter_meta(target / "adapter_1", 1, world[1], model_digest(world[1]))
    router = Router(target)
    assert router.gathered is None
    mixed = router.sample(QUESTIONS, clusters=[2, 0, 1], max_new_tokens=8)[1]
    grouped = router.sample(QUESTIONS, clusters=[2, 0, 1], max_new_tokens=8, mixed=False)[1]
    assert mixed == grouped


def test_sampling_is_seeded(router):
    first = router.sample(
        QUESTIONS, clusters=[0, 1, 2], n=2, temperature=0.8, max_new_tokens=8, seed=3
    )
    again = router.sample(
        QUESTIONS, clusters=[0, 1, 2], n=2, temperature=0.8, max_new_tokens=8, seed=3
    )
    assert first == again and all(len(texts) == 2 for texts in first[1])


@pytest.mark.slow
def test_routing_picks_the_nearest_centroid(world, tmp_path):
    from codealign.lm.embedding import Embedder, model_identity
    from codealign.params.lm import EmbedParams
    from codealign.specialists.cluster import embedder_spec

    params = EmbedParams()
    vectors = Embedder(params).embed(QUESTIONS[:2])
    # Centroids: the two questions' own embeddings, and a point far from both.
    centroids = np.concatenate([vectors, -vectors.mean(0, keepdims=True)]).astype(np.float32)
    spec = embedder_spec(params, model_identity(params.model))
    router = Router(make_router_dir(world[1], tmp_path / "sft", centroids, embedder=spec))
    assert router.route(QUESTIONS) == [0, 1, 0]
    answers = router.generate(QUESTIONS[:2], max_new_tokens=4)
    assert [cluster for cluster, _ in answers] == [0, 1]


def test_adapter_trained_on_another_base_model_is_refused(world):
    root, base, other, _ = world
    with pytest.raises(CodealignError, match=r"not the base model the adapters .* were trained on"):
        Router(world[3], base_model=other)
    swapped = copy_router(world, "swapped")
    shutil.rmtree(swapped / "adapter_1")
    from codealign.specialists.adapters import model_digest, write_adapter_meta

    save_random_adapter(other, swapped / "adapter_1", seed=5)
    write_adapter_meta(swapped / "adapter_1", 1, other, model_digest(other))
    with pytest.raises(
        CodealignError, match=r"adapter_1: adapter was trained on another base model"
    ):
        Router(swapped)


def test_missing_adapter_and_bad_manifests_are_one_line(world):
    missing = copy_router(world, "missing")
    shutil.rmtree(missing / "adapter_2")
    with pytest.raises(CodealignError, match=r"adapter_2: adapter directory not found"):
        Router(missing)
    corrupt = copy_router(world, "corrupt")
    (corrupt / "router.json").write_text('{"format": ')
    with pytest.raises(CodealignError, match=r"router.json:1: invalid JSON"):
        Router(corrupt)
    mismatched = copy_router(world, "mismatched")
    manifest = json.loads((mismatched / "router.json").read_text())
    (mismatched / "router.json").write_text(json.dumps({**manifest, "dimension": 16}))
    with pytest.raises(CodealignError, match=r"centroids of shape \(3, 8\), .* dimension = 16"):
        Router(mismatched)
    (mismatched / "router.json").write_text(json.dumps({**manifest, "k": 2}))
    with pytest.raises(CodealignError, match=r"k = 2 but 3 adapters are listed"):
        Router(mismatched)
    with pytest.raises(CodealignError, match=r"no router.json"):
        Router(world[1])


def test_generate_command_prints_cluster_and_answer(world, tmp_path):
    # K = 1 routes without an embedder, so the CLI test needs no sentence-transformer.
    single = make_router_dir(world[1], tmp_path / "k1", np.zeros((1, 8), dtype=np.float32))
    result = CliRunner().invoke(
        cli, ["generate", "--model", str(single), "--max-new-tokens", "6", QUESTIONS[0]]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "cluster 0 of 1"
    as_json = CliRunner().invoke(
        cli, ["generate", "--model", str(single), "--json", "--max-new-tokens", "6", "q1", "q2"]
    )
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["question"] for r in rows] == ["q1", "q2"] and {r["cluster"] for r in rows} == {0}


def test_generate_command_bad_model_dir_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--model", str(tmp_path / "nope"), "q"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {tmp_path / 'nope'}: not a directory"]


def test_extract_code_takes_the_fenced_program():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == (
        "def f():\n    return 1\n"
    )
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1\n"
