"""The base model: tokenizer, a killed-and-resumed run, and loading what the stage saves."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from codealign.lm.training import logging_interval
from codealign.params.pretraining import BaseModelParams
from codealign.pretraining.base_model import pack, train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def test_newline_is_its_own_token_so_prompts_end_cleanly():
    code = 'def f(x):\n    """Return x plus 1."""\n    return x + 1\n'
    tokenizer = train_tokenizer([code] * 20 + ["Tom had 3 apples."] * 20, 300)
    tokens = tokenizer.tokenize(code)
    assert tokens.count("Ċ") == 3
    assert tokenizer.decode(tokenizer(code)["input_ids"]) == code
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert "<|assistant|>" in tokenizer.apply_chat_template(messages, tokenize=False)


def test_pack_makes_full_blocks_separated_by_eos():
    tokenizer = train_tokenizer(["abc def ghi"] * 10, 300)
    blocks = pack(tokenizer, ["abc def ghi"] * 10, 8)
    assert blocks and all(len(b) == 8 for b in blocks)
    assert tokenizer.eos_token_id in sum(blocks, [])


@pytest.fixture(scope="module")
def smoke_seed(tmp_path_factory) -> Path:
    """The seed stage's out for the smoke profile: it reads only `seed` and `data`, which
    the tests below leave as they are."""
    from click.testing import CliRunner
    from stage_scripts import stage

    root = tmp_path_factory.mktemp("seed")
    args = ["--params", str(ROOT / "params" / "smoke.yaml"), "--out", str(root / "seed")]
    result = CliRunner().invoke(stage("seed"), [*args, "--metrics", str(root / "seed.json")])
    assert result.exit_code == 0, result.output
    return root / "seed"


def _stage(work: Path, params: Path, cache: Path, out: str, seed_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "CODEALIGN_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "stages" / "base_model.py"),
            "--params",
            str(params),
            "--seed-dir",
            str(seed_dir),
            "--out",
            str(work / out),
            "--metrics",
            str(work / f"{out}.json"),
            "--live-dir",
            str(work / f"{out}_live"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _weights(model_dir: Path):
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def test_checkpoints_fall_on_logging_steps():
    assert logging_interval(6, 100) == 5
    assert logging_interval(2, 15) == 1
    assert logging_interval(5, 50) == 5
    assert logging_interval(0, 10) == 1
    assert logging_interval(40, 10) == 10


def _curves(live_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(live_dir.glob("plots/metrics/train/*.tsv"))}


@pytest.mark.slow
def test_killed_run_resumes_from_checkpoint_and_matches_uninterrupted(tmp_path, smoke_seed):
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    # steps // 100 = 2 does not divide save_steps: the loss is logged every step, so the
    # resumed run's first logged loss covers the same window as the uninterrupted run's.
    raw["base_model"].update(steps=200, save_steps=15, eval_tasks=0)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))

    # The uninterrupted run goes on beside the killed one (its own cache and outs): two
    # processes keep both of CI's cores busy.
    whole = _stage(tmp_path, params, tmp_path / "cache_whole", "whole", smoke_seed)

    cache = tmp_path / "cache_killed"
    killed = _stage(tmp_path, params, cache, "resumed", smoke_seed)
    deadline = time.time() + 300
    while not list(cache.glob("checkpoints/base_model/*/checkpoint-15/trainer_state.json")):
        assert killed.poll() is None and time.time() < deadline, "no checkpoint before exit"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "resumed").exists(), "a killed stage left a half-written out"

    resumed = _stage(tmp_path, params, cache, "resumed", smoke_seed)
    stderr = resumed.communicate()[1]
    assert resumed.returncode == 0, stderr
    assert "resuming from" in stderr
    stderr = whole.communicate()[1]
    assert whole.returncode == 0, stderr
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-5, key
    curves = _curves(tmp_path / "resumed_live")
    assert set(curves) == {"grad_norm.tsv", "learning_rate.tsv", "loss.tsv"}
    assert curves == _curves(tmp_path / "whole_live")
    metrics = json.loads((tmp_path / "resumed.json").read_text())
    assert metrics["tokens_seen"] == 200 * 8 * 64


@pytest.mark.slow
def test_base_model_seed_repeats_pretraining_on_the_same_corpus(tmp_path, smoke_seed):
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw["base_model"].update(steps=4, eval_tasks=0)
    # The three runs at once, each with a cache of its own: nothing one computes is reused.
    stages = [
        _stage(
            tmp_path,
            _params(tmp_path, raw, base_seed),
            tmp_path / f"cache_{base_seed}",
            f"m{base_seed}",
            smoke_seed,
        )
        for base_seed in (None, raw["seed"], raw["seed"] + 1)
    ]
    for stage in stages:
        stderr = stage.communicate()[1]
        assert stage.returncode == 0, stderr
    default, same, other = (tmp_path / f"m{s}" for s in (None, raw["seed"], raw["seed"] + 1))
    metrics = {
        path: json.loads(path.with_suffix(".json").read_text()) for path in (default, same, other)
    }
    assert [metrics[path]["seed"] for path in (default, same, other)] == [0, 0, 1]
    # null means the master seed; another seed trains other weights on the very same corpus.
    assert (default / "model.safetensors").read_bytes() == (same / "model.safetensors").read_bytes()
    a, b = _weights(default), _weights(other)
    assert any((a[key] - b[key]).abs().max().item() > 1e-3 for key in a)
    assert (default / "tokenizer.json").read_bytes() == (other / "tokenizer.json").read_bytes()
    assert metrics[default]["corpus_chars"] == metrics[other]["corpus_chars"]


def _params(tmp_path: Path, raw: dict, base_seed: int | None) -> Path:
    raw = {**raw, "base_model": {**raw["base_model"], "seed": base_seed}}
    path = tmp_path / f"params_{base_seed}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_params_reject_heads_that_do_not_divide_hidden():
    from codealign.errors import CodealignError

    with pytest.raises(CodealignError, match="multiple of base_model.num_heads"):
        BaseModelParams.from_dict({"hidden_size": 30, "num_heads": 4}, "base_model")
