"""DPO stages: chaining, equal steps for the shuffled run, per-sample losses, skipped stages."""

import csv
import json

import pytest
from dpo_support import crafted_pairs, lora_adapter, tiny_model, world_texts

from codealign.dpo.curriculum import build_curriculum
from codealign.dpo.pairs import reference_logps
from codealign.dpo.schedule import RunContext, compare, run_shuffled, run_stage
from codealign.dpo.train import boundaries, build_config, make_trainer, stage_steps
from codealign.errors import CodealignError
from codealign.evaluation.policy import load_policy, resolve_policy
from codealign.io import write_json, write_jsonl
from codealign.params.dpo import CurriculumParams, DpoParams


def test_steps_per_stage_and_boundaries():
    p = DpoParams.from_dict({"batch_size": 4, "epochs": 2}, "dpo")
    assert [stage_steps(n, p) for n in (0, 1, 4, 5)] == [0, 2, 2, 4]
    assert boundaries([5, 0, 8], p) == [4, 4, 8]
    # An optimizer step takes batch_size x grad_accum pairs.
    p = DpoParams.from_dict({"batch_size": 2, "grad_accum": 2, "epochs": 2}, "dpo")
    assert [stage_steps(n, p) for n in (0, 1, 4, 5)] == [0, 2, 2, 4]


def test_paper_profile_dpo_takes_16_pairs_a_step_in_checkpointed_micro_batches(tmp_path):
    from pathlib import Path

    from codealign.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params" / "paper.yaml")["dpo"]
    config = build_config(params, work_dir=tmp_path, max_steps=10, max_length=1024, seed=0)
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 16
    assert config.gradient_accumulation_steps > 1 and config.activation_checkpointing
    assert config.activation_checkpointing_kwargs == {"use_reentrant": False}
    assert config.bf16 and config.lr_scheduler_type == "constant" and config.beta == 0.1
    assert stage_steps(17, params) == 2  # steps count pairs per optimizer step


@pytest.fixture(scope="module")
def dpo_inputs(small_world, tmp_path_factory):
    """A tiny SFT adapter, a seed dir with 2 tinydev tasks (DPO's stage boundaries score
    the dev set), and a 4-stage curriculum, built once for the module: computing the
    reference log-probs is what takes the time, and every test reads the same."""
    root = tmp_path_factory.mktemp("dpo_inputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEALIGN_CACHE", str(root / "cache"))
        base = tiny_model(root / "base", world_texts(small_world))
        sft = lora_adapter(base, root / "sft")
        write_jsonl(root / "seed" / "tinydev.jsonl", [t.to_problem() for t in small_world.dev[:2]])
        policy = load_policy(resolve_policy(sft), fused_lm_head=True)
        pairs, _ = reference_logps(
            policy.model,
            policy.tokenizer,
            crafted_pairs(small_world, 10),
            batch_size=8,
            max_length=256,
            progress=False,
        )
    params = CurriculumParams.from_dict({"percentiles": [10, 50, 90]}, "curriculum")
    result = build_curriculum(pairs, params)
    curriculum = root / "curriculum"
    for number, stage in enumerate(result["stages"], start=1):
        write_jsonl(curriculum / f"stage_{number}.jsonl", stage)
    write_json(curriculum / "manifest.json", {**result["summary"], "max_length": 256})
    return root, result


@pytest.fixture
def setup(dpo_inputs, tmp_path, monkeypatch):
    """The module's DPO inputs, copied into this test's tmp_path (tests rewrite the
    curriculum), with DPO params that train in seconds."""
    import copy
    import shutil

    root, result = dpo_inputs
    monkeypatch.setenv("CODEALIGN_CACHE", str(tmp_path / "cache"))
    for name in ("sft", "seed", "curriculum"):
        shutil.copytree(root / name, tmp_path / name)
    dpo = DpoParams.from_dict(
        {
            "batch_size": 2,
            "learning_rate": 0.01,
            "lora_r": 4,
            "eval_limit": 2,
            "eval_n": 1,
            "eval_max_new_tokens": 8,
            "eval_batch_size": 32,
        },
        "dpo",
    )
    ctx = RunContext(dpo, "single", 0, tmp_path / "seed", tmp_path / "raw")
    return ctx, tmp_path / "sft", tmp_path / "curriculum", copy.deepcopy(result)


def losses(path):
    return [json.loads(line) for line in (path / "logs" / "per_sample_loss.jsonl").open()]


@pytest.mark.slow
def test_stages_chain_and_shuffled_takes_the_same_steps(setup, tmp_path):
    ctx, sft, curriculum, result = setup
    sizes = [len(s) for s in result["stages"]]
    live = tmp_path / "curves"
    first = run_stage(ctx, 1, sft, curriculum, tmp_path / "dpo" / "stage_1", live / "stage_1")
    assert first["eval_init"]["step"] == 0 and first["steps"] == stage_steps(sizes[0], ctx.params)
    # The stage boundaries score the dev set (dpo.eval_benchmarks), never tinyeval.
    assert set(first["eval"]) == {"step", "tinydev/pass@1", "pass@1"}
    # Stage 1 starts at the reference: its first step has a zero reward margin exactly.
    log1 = losses(tmp_path / "dpo" / "stage_1")
    assert {e["pair_id"] for e in log1} == {p["pair_id"] for p in result["stages"][0]}
    assert all(e["reward_margin"] == 0.0 for e in log1 if e["step"] == 1)
    with pytest.raises(CodealignError, match="stage 3 must start from stage 2's"):
        run_stage(ctx, 3, tmp_path / "dpo" / "stage_1", curriculum, tmp_path / "dpo" / "bad")
    second = run_stage(
        ctx, 2, tmp_path / "dpo" / "stage_1", curriculum, tmp_path / "dpo" / "s2", live / "stage_2"
    )
    assert second["start_step"] == first["end_step"]
    # Stage 2 starts from stage 1's policy, not the reference: margins are not zero.
    log2 = losses(tmp_path / "dpo" / "s2")
    assert any(e["reward_margin"] != 0.0 for e in log2 if e["step"] == 1)
    assert json.loads((tmp_path / "dpo" / "s2" / "dpo_state.json").read_text()) == {
        "stage": 2,
        "cumulative_steps": second["end_step"],
    }

    shuffled, epoch = run_shuffled(ctx, sft, curriculum, tmp_path / "shuffled", live / "shuffled")
    assert shuffled["steps"] == sum(stage_steps(n, ctx.params) for n in sizes)
    assert shuffled["global_step"] == shuffled["steps"]
    # The dvclive curves, one file per metric with a run column: the curriculum's stages
    # continue one step axis, the shuffled run has its own line over the same steps.
    for metric in ("loss", "reward_margin", "reward_accuracy"):
        rows = {
            run: [
                list(
                    csv.DictReader((live / run / "curves" / f"{metric}.tsv").open(), delimiter="\t")
                )
            ][0]
            for run in ("stage_1", "stage_2", "shuffled")
        }
        assert {r["run"] for rs in rows.values() for r in rs} == {"stage_1", "stage_2", "shuffled"}
        steps = {run: [int(r["step"]) for r in rs] for run, rs in rows.items()}
        assert steps["stage_1"] and max(steps["stage_1"]) <= first["end_step"]
        assert min(steps["stage_2"]) > first["end_step"]
        assert max(steps["stage_2"]) <= second["end_step"]
        assert max(steps["shuffled"]) <= shuffled["steps"]
    last = json.loads((live / "shuffled" / "metrics.json").read_text())["train"]
    assert last["reward_margin"] == pytest.approx(shuffled["final_reward_margin"])
    saved = sorted((tmp_path / "shuffled" / "checkpoints").iterdir())
    assert {p.name for p in saved} == {f"step_{s}" for s in shuffled["boundaries"]}
    assert [e["step"] for e in shuffled["evals"]] == sorted(set(shuffled["boundaries"]))
    assert sorted(e["pair_id"] for e in epoch) == sorted(
        p["pair_id"] for s in result["stages"] for p in s
    )  # one epoch: every pair once


@pytest.mark.slow
def test_an_empty_stage_is_skipped_and_copies_its_input(setup, tmp_path):
    ctx, sft, curriculum, _ = setup
    write_jsonl(curriculum / "stage_1.jsonl", [])
    manifest = json.loads((curriculum / "manifest.json").read_text())
    manifest["stages"][0]["pairs"] = 0
    write_json(curriculum / "manifest.json", manifest)
    result = run_stage(ctx, 1, sft, curriculum, tmp_path / "stage_1")
    assert result["skipped"] and result["steps"] == 0 and result["end_step"] == 0
    assert result["reason"] == "all pairs pruned"
    copied = tmp_path / "stage_1" / "adapter_model.safetensors"
    assert copied.read_bytes() == (sft / "adapter_model.safetensors").read_bytes()
    curve = compare([{**result, "eval": None}], {"evals": []})
    assert curve["curriculum"][1] == {
        "step": 0,
        "pass@1": result["eval_init"]["pass@1"],
        "stage": 1,
        "carried": True,
    }


@pytest.mark.slow
def test_no_pairs_at_all_skips_every_run(setup, tmp_path):
    ctx, sft, _, _ = setup
    empty = build_curriculum([], CurriculumParams())
    curriculum = tmp_path / "empty"
    for number in range(1, 5):
        write_jsonl(curriculum / f"stage_{number}.jsonl", [])
    write_json(curriculum / "manifest.json", {**empty["summary"], "max_length": 256})
    shuffled, epoch = run_shuffled(ctx, sft, curriculum, tmp_path / "shuffled")
    assert shuffled["skipped"] and shuffled["steps"] == 0 and epoch == []
    assert (tmp_path / "shuffled" / "adapter_config.json").is_file()


@pytest.mark.slow
def test_accumulated_and_checkpointed_steps_train_the_same_adapter(setup, tmp_path):
    """The memory knobs of a large model (params/paper.yaml) change how a step is computed,
    not the step: 2 pairs x 2 accumulated passes, with or without activation
    checkpointing, train the adapter that 4 pairs in one pass train."""
    import dataclasses

    import torch
    from safetensors.torch import load_file

    ctx, sft, curriculum, result = setup
    pairs = [p for stage in result["stages"] for p in stage]
    assert len(pairs) >= 8

    def train(name, **changes):
        params = dataclasses.replace(ctx.params, lora_dropout=0.0, **changes)
        trainer = make_trainer(
            resolve_policy(sft), pairs, params, max_steps=2, max_length=256, seed=0,
            work_dir=tmp_path / name,
        )  # fmt: skip
        trainer.train()
        assert trainer.model.is_activation_checkpointing == params.gradient_checkpointing
        weights = {
            n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad
        }
        logged = sorted(trainer.per_sample, key=lambda e: (e["step"], e["pair_id"]))
        return weights, [(e["step"], e["pair_id"]) for e in logged], [e["loss"] for e in logged]

    whole, whole_steps, whole_losses = train("whole", batch_size=4)
    initial = load_file(sft / "adapter_model.safetensors")
    moved = [n for n, w in whole.items() if not torch.equal(w, initial[n.replace(".default", "")])]
    assert moved, "training changed no adapter weight"
    for name, changes in {
        "accumulated": {"batch_size": 2, "grad_accum": 2},
        "checkpointed": {"batch_size": 2, "grad_accum": 2, "gradient_checkpointing": True},
    }.items():
        weights, steps, step_losses = train(name, **changes)
        assert steps == whole_steps, name  # the same 8 pairs, 4 to a step
        assert step_losses == pytest.approx(whole_losses, abs=1e-5), name
        assert weights.keys() == whole.keys()
        for key, value in weights.items():
            assert torch.allclose(value, whole[key], atol=1e-5), (name, key)


def _checkpoints(cache, stage: str):
    return list(cache.glob(f"checkpoints/{stage}/*/checkpoint-*/trainer_state.json"))


@pytest.mark.slow
def test_a_killed_shuffled_run_resumes_and_matches_an_uninterrupted_one(
    setup, tmp_path, monkeypatch
):
    import dataclasses
    import multiprocessing
    import time

    from safetensors.torch import load_file

    ctx, sft, curriculum, _ = setup
    ctx = dataclasses.replace(ctx, params=dataclasses.replace(ctx.params, save_steps=2))
    monkeypatch.setenv("CODEALIGN_CACHE", str(tmp_path / "cache_whole"))
    whole, whole_epoch = run_shuffled(ctx, sft, curriculum, tmp_path / "whole")
    assert whole["steps"] >= 4

    # The run is SIGKILLed in a process of its own as soon as its first checkpoint is on disk.
    cache = tmp_path / "cache_killed"
    monkeypatch.setenv("CODEALIGN_CACHE", str(cache))
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(target=run_shuffled, args=(ctx, sft, curriculum, tmp_path / "resumed"))
    child.start()
    deadline = time.time() + 300
    while not _checkpoints(cache, "dpo_shuffled"):
        assert child.is_alive() and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.02)
    child.kill()
    child.join()
    assert not (tmp_path / "resumed").exists(), "a killed run left a half-written out"

    resumed, resumed_epoch = run_shuffled(ctx, sft, curriculum, tmp_path / "resumed")
    assert resumed["global_step"] == whole["global_step"]
    assert [e["step"] for e in resumed["evals"]] == [e["step"] for e in whole["evals"]]
    a = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-5, key
    # Every step's per-sample losses, those before the kill included, once each.
    log_a, log_b = losses(tmp_path / "whole"), losses(tmp_path / "resumed")
    assert [(e["step"], e["pair_id"]) for e in log_b] == [(e["step"], e["pair_id"]) for e in log_a]
    assert [e["loss"] for e in log_b] == pytest.approx([e["loss"] for e in log_a], abs=1e-5)
    assert [e["pair_id"] for e in resumed_epoch] == [e["pair_id"] for e in whole_epoch]
    boundaries_saved = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert boundaries_saved == sorted(
        p.name for p in (tmp_path / "whole" / "checkpoints").iterdir()
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs CUDA")
def test_a_bf16_dpo_stage_on_cuda(setup, tmp_path):
    import dataclasses

    ctx, sft, curriculum, result = setup
    # bf16 in checkpointed micro-batches, as params/paper.yaml trains.
    memory = {"batch_size": 1, "grad_accum": 2, "gradient_checkpointing": True}
    ctx = dataclasses.replace(
        ctx, params=dataclasses.replace(ctx.params, dtype="bfloat16", **memory)
    )
    first = run_stage(ctx, 1, sft, curriculum, tmp_path / "stage_1")
    assert first["steps"] == stage_steps(len(result["stages"][0]), ctx.params) > 0
    assert (tmp_path / "stage_1" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_dpo_shuffled_stage_under_torchrun_with_two_processes(setup, tmp_path):
    """`torchrun --nproc_per_node 2` (what `accelerate launch` does on GPUs): two data-
    parallel processes, each taking `batch_size` pairs per step; rank 0 alone writes."""
    import dataclasses
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    ctx, sft, curriculum, result = setup
    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "params" / "smoke.yaml").read_text())
    raw["dpo"].update(dataclasses.asdict(ctx.params))
    raw["dpo"] = {k: list(v) if isinstance(v, tuple) else v for k, v in raw["dpo"].items()}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    torchrun = Path(sys.executable).parent / "torchrun"
    out = tmp_path / "shuffled_ddp"
    args = [str(torchrun), "--standalone", "--nproc_per_node", "2"]
    args += [str(root / "stages" / "dpo_shuffled.py"), "--params", str(params)]
    args += ["--init", str(sft), "--curriculum", str(curriculum), "--seed-dir", str(ctx.seed_dir)]
    args += ["--out", str(out), "--metrics", str(tmp_path / "shuffled.json")]
    args += ["--plot", str(tmp_path / "loss.png")]
    scratch = tmp_path / "scratch"  # the processes' TMPDIR
    scratch.mkdir()
    env = {**os.environ, "CODEALIGN_CACHE": str(tmp_path / "cache_ddp"), "OMP_NUM_THREADS": "1"}
    env["TMPDIR"] = str(scratch)
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "shuffled.json").read_text())
    pairs = sum(len(s) for s in result["stages"])
    # Both processes train on every step, each on its half of the global batch.
    assert (
        metrics["global_step"]
        == metrics["steps"]
        == sum(stage_steps(len(s), ctx.params) for s in result["stages"])
    )
    assert (out / "adapter_model.safetensors").is_file() and (tmp_path / "loss.png").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(
        f"step_{s}" for s in set(metrics["boundaries"]) if s > 0
    )
    logged = losses(out)
    assert logged and len({e["pair_id"] for e in logged}) <= pairs  # rank 0's share
    assert not list(tmp_path.glob(".shuffled_ddp.*.tmp")), "a staging dir was left behind"
    assert not list(scratch.glob("dpo.rank*")), "rank 1 left its loss log behind"
