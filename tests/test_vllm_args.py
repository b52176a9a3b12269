"""vLLM engine arguments from the adapters: max_lora_rank from their r, max_loras from K."""

from __future__ import annotations

import json

import pytest

from codealign.dpo.sample import VLLM_LORA_RANKS, vllm_lora_args
from codealign.errors import CodealignError


def adapters(tmp_path, ranks):
    dirs = []
    for i, r in enumerate(ranks):
        d = tmp_path / f"cluster_{i}"
        d.mkdir()
        (d / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": 2 * r}))
        dirs.append(d)
    return dirs


@pytest.mark.parametrize(
    ("ranks", "rank"),
    [([8], 8), ([128] * 10, 128), ([4, 12], 16), ([100, 64], 128), ([257], 320), ([512], 512)],
)
def test_max_lora_rank_is_the_smallest_supported_rank_covering_every_adapter(tmp_path, ranks, rank):
    args = vllm_lora_args(adapters(tmp_path, ranks))
    assert args == {"enable_lora": True, "max_lora_rank": rank, "max_loras": len(ranks)}
    assert rank in VLLM_LORA_RANKS


def test_the_paper_sft_rank_no_longer_exceeds_the_default_16(tmp_path):
    # params/paper.yaml trains r = 128 specialists (K = 10): vLLM's default max_lora_rank 16
    # and max_loras 1 would refuse them.
    args = vllm_lora_args(adapters(tmp_path, [128] * 10))
    assert args["max_lora_rank"] == 128 and args["max_loras"] == 10


def test_no_adapters_turns_lora_off(tmp_path):
    assert vllm_lora_args([]) == {"enable_lora": False}


def test_a_rank_beyond_vllm_or_an_unreadable_config_is_one_line(tmp_path):
    with pytest.raises(CodealignError, match="r = 1024 exceeds vLLM's largest rank 512"):
        vllm_lora_args(adapters(tmp_path, [1024]))
    missing = tmp_path / "nothing"
    missing.mkdir()
    with pytest.raises(CodealignError, match=r"adapter_config.json: cannot read the LoRA rank"):
        vllm_lora_args([missing])
