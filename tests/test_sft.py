"""Specialist fine-tuning: configs from params, answer-only loss, best checkpoint, resume."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_specialists import make_base_model, sft_records

from codealign.errors import CodealignError
from codealign.params import load_params, parse_params
from codealign.params.specialists import SFTParams
from codealign.specialists.sft import build_configs, build_trainer, train_adapter, train_specialists

ROOT = Path(__file__).resolve().parents[1]
# Short runs: 12 items, batch 4, 2 epochs = 6 steps, a checkpoint every 2.
# Small and quick; epochs, lora_alpha, eval_batch_size and max_length are the values these
# tests were written against, not params.yaml's.
FAST = SFTParams(
    batch_size=4, save_steps=2, logging_steps=1, learning_rate=5e-3, lora_r=4,
    epochs=2.0, lora_alpha=16, eval_batch_size=32, max_length=512,
)  # fmt: skip


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return make_base_model(tmp_path_factory.mktemp("base") / "base")


def test_paper_profile_builds_the_methods_qlora_configs_on_cpu(tmp_path):
    raw = yaml.safe_load((ROOT / "params" / "paper.yaml").read_text())
    assert "sft" in raw, "params/paper.yaml has no sft section"
    params = parse_params(raw, "params/paper.yaml")["sft"]
    lora, bnb, config = build_configs(params, tmp_path, seed=0, use_cpu=False)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (128, 256, 0.1)
    assert lora.target_modules == "all-linear"
    import torch

    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4"
    assert bnb.bnb_4bit_compute_dtype == torch.float16
    assert config.learning_rate == 2e-4 and config.num_train_epochs == 2
    assert config.per_device_train_batch_size == 4 and config.gradient_accumulation_steps == 2
    assert config.max_length == 1024 and config.optim == "paged_adamw_32bit"
    assert config.lr_scheduler_type == "cosine" and config.warmup_steps == 0.05
    assert config.max_grad_norm == 0.3 and config.weight_decay == 0.001
    assert config.activation_checkpointing and config.fp16 and not config.bf16
    assert config.save_steps == 200 and config.eval_steps == 200
    assert config.load_best_model_at_end and config.metric_for_best_model == "eval_loss"


def test_default_profile_is_full_precision_lora():
    params = load_params(ROOT / "params.yaml")["sft"]
    assert params.quantization == "none" and params.compute_dtype == "float32"


def test_bad_sft_params_name_the_key():
    with pytest.raises(CodealignError, match=r"^sft.compute_dtype must be float16 or bfloat16"):
        SFTParams.from_dict({"quantization": "nf4"}, "sft")
    with pytest.raises(CodealignError, match=r"^sft.lora_r must be an integer >= 1, got -3$"):
        SFTParams.from_dict({"lora_r": -3}, "sft")
    message = r"^sft.logging_steps \(3\) must divide sft.save_steps \(20\): a run resumed"
    with pytest.raises(CodealignError, match=message):
        SFTParams.from_dict({"logging_steps": 3, "save_steps": 20}, "sft")


def test_loss_is_on_the_answer_only(base_dir, tmp_path):
    trainer = build_trainer(base_dir, sft_records(2), [], FAST, tmp_path, seed=0)
    row = trainer.train_dataset[0]
    tokenizer = trainer.processing_class
    text = tokenizer.decode(row["input_ids"])
    answer = tokenizer.decode(
        [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    )
    assert text.startswith("<|user|>\nWrite a function add_0(x)")
    assert answer == 'def add_0(x):\n    """Return x plus 0."""\n    return x + 0\n<|eos|>'


@pytest.mark.slow
def test_specialists_keep_their_lowest_validation_loss_checkpoint(base_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEALIGN_CACHE", str(tmp_path / "cache"))
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    records = sft_records(8)
    train, validation = records[:12], records[12:]
    labels = [0 if r["id"].startswith("add") else 1 for r in records]
    centroids = np.eye(2, 4, dtype=np.float32)
    embedder = {"model": "m", "identity": None, "prefix": "", "normalize": True}
    summary = train_specialists(
        base_dir, train, validation, labels[:12], labels[12:], centroids, embedder, FAST,
        tmp_path / "sft", seed=0, live_root=tmp_path / "live",
    )  # fmt: skip
    assert summary["k"] == 2 and [a["train_items"] for a in summary["adapters"]] == [6, 6]
    for adapter in summary["adapters"]:
        losses = {int(step): loss for step, loss in adapter["eval_losses"].items()}
        assert adapter["eval_loss"] == min(losses.values())
        assert adapter["best_step"] == min(losses, key=losses.get)
        assert adapter["steps"] == 4 and adapter["selected_by"] == "eval_loss"
    router = json.loads((tmp_path / "sft" / "router.json").read_text())
    assert [a["path"] for a in router["adapters"]] == ["adapter_0", "adapter_1"]
    assert router["base_model"]["path"] == str(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(base, tmp_path / "sft" / "adapter_1")
    assert sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) > 0
    curves = tmp_path / "live" / "plots" / "metrics" / "adapter_0"
    assert (curves / "train" / "loss.tsv").is_file() and (
        curves / "eval" / "eval_loss.tsv"
    ).is_file()
    # Both adapters' curves of a metric in one file, as dvc.yaml's `plots:` overlay them.
    overlay = (tmp_path / "live" / "curves" / "loss.tsv").read_text().splitlines()
    assert overlay[0] == "step\trun\tloss"
    assert {line.split("\t")[1] for line in overlay[1:]} == {"live/adapter_0", "live/adapter_1"}


class Interrupt(Exception):
    """Stands in for a kill right after a checkpoint is written."""


def _interrupt_after_checkpoint(step: int):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupt

    return Kill()


def _live(path: Path):
    from dvclive import Live

    return Live(str(path), dvcyaml=None, save_dvc_exp=False, resume=False)


@pytest.fixture(scope="module")
def straight(base_dir, tmp_path_factory):
    """One adapter trained without interruption on sft_records(6) (its outs, checkpoints and
    curves in the returned dir), the reference both resume tests compare against."""
    root = tmp_path_factory.mktemp("straight")
    records = sft_records(6)
    with _live(root / "live_a") as curves:
        summary = train_adapter(
            base_dir, records[:8], records[8:], FAST, root / "a", root / "ck_a", seed=0,
            live=curves,
        )  # fmt: skip
    return root, summary


@pytest.mark.slow
def test_interrupted_adapter_resumes_from_its_last_checkpoint(base_dir, straight, tmp_path):
    from safetensors.torch import load_file

    def live(name: str):
        return _live(tmp_path / name)

    records = sft_records(6)
    train, validation = records[:8], records[8:]
    reference, straight = straight
    with pytest.raises(Interrupt), live("live_b") as curves:
        train_adapter(
            base_dir, train, validation, FAST, tmp_path / "b", tmp_path / "ck_b", seed=0,
            live=curves, callbacks=[_interrupt_after_checkpoint(2)],
        )  # fmt: skip
    assert not (tmp_path / "b").exists()
    # As DVC does before it reruns a stage: the killed run's curves are deleted.
    shutil.rmtree(tmp_path / "live_b")
    with live("live_b") as curves:
        resumed = train_adapter(
            base_dir, train, validation, FAST, tmp_path / "b", tmp_path / "ck_b", seed=0,
            live=curves,
        )  # fmt: skip
    # The resumed run's curves hold every step, the ones before the checkpoint included.
    for curve in ("train/loss.tsv", "eval/eval_loss.tsv"):
        a = (reference / "live_a" / "plots" / "metrics" / curve).read_text().splitlines()
        b = (tmp_path / "live_b" / "plots" / "metrics" / curve).read_text().splitlines()
        assert len(a) > 2 and a[0] == b[0], curve  # a header and a row per step
        rows_a = [[float(x) for x in row.split("\t")[1:]] for row in a[1:]]  # step, value
        rows_b = [[float(x) for x in row.split("\t")[1:]] for row in b[1:]]
        np.testing.assert_allclose(rows_b, rows_a, rtol=1e-4, err_msg=curve)
    assert resumed["resumed_from"] == "checkpoint-2" and straight["resumed_from"] is None
    assert resumed["steps"] == straight["steps"] == 4
    a = load_file(reference / "a" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-5)


@pytest.mark.slow
def test_a_run_killed_after_its_last_checkpoint_reruns_to_the_same_steps(
    base_dir, straight, tmp_path
):
    # Killed between the final checkpoint and the rename of its outs: Trainer resumed
    # from a finished run's checkpoint takes one step more than asked, so the rerun
    # resumes from the checkpoint before it.
    from safetensors.torch import load_file

    records = sft_records(6)
    train, validation = records[:8], records[8:]
    reference, first = straight  # the finished run: its checkpoints are all on disk
    shutil.copytree(reference / "ck_a", tmp_path / "ck")
    assert (tmp_path / "ck" / "checkpoint-4" / "trainer_state.json").is_file()
    again = train_adapter(base_dir, train, validation, FAST, tmp_path / "b", tmp_path / "ck", 0)
    assert again["resumed_from"] == "checkpoint-2"
    assert again["steps"] == first["steps"] == 4
    a = load_file(reference / "a" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter_model.safetensors")
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-5)


@pytest.mark.gpu
def test_qlora_step_on_cuda(base_dir, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("bitsandbytes")
    params = SFTParams(
        quantization="nf4", compute_dtype="float16", optimizer="paged_adamw_32bit",
        gradient_checkpointing=True, batch_size=2, save_steps=1, lora_r=4,
    )  # fmt: skip
    stats = train_adapter(
        base_dir,
        sft_records(2),
        sft_records(1, start=5),
        params,
        tmp_path / "q",
        tmp_path / "ck",
        0,
    )
    assert stats["steps"] >= 1 and (tmp_path / "q" / "adapter_model.safetensors").is_file()


def edit_records(n_per_family: int) -> list[dict]:
    """sft_records with their first LintSeq edit sequence as `target`, as data/lintseq has."""
    from codealign.edits.lintseq import build_split
    from codealign.params.edits import LintseqParams

    result = build_split(sft_records(n_per_family), LintseqParams(samples=1), 0, progress=False)
    return result.records


def test_target_edits_trains_on_the_rendered_edits_with_loss_on_the_answer_only(base_dir, tmp_path):
    from dataclasses import replace

    # Sequences of two edits at least, so that the separator is in the answer too.
    records = [r for r in edit_records(3) if "<|diff|>" in r["target"]]
    assert records
    trainer = build_trainer(base_dir, records, [], replace(FAST, target="edits"), tmp_path, seed=0)
    row = trainer.train_dataset[0]
    tokenizer = trainer.processing_class
    answer = tokenizer.decode(
        [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    )
    assert tokenizer.decode(row["input_ids"]).startswith(f"<|user|>\n{records[0]['question']}")
    assert answer == records[0]["target"] + "<|eos|>"
    assert records[0]["code"] not in answer


def test_target_edits_on_a_record_without_target_is_one_error_line(base_dir, tmp_path):
    from dataclasses import replace

    message = (
        r"^record 'add/0' has no 'target' field, which sft.target: edits trains on "
        r"\(train on the lintseq stage's records, data/lintseq\)$"
    )
    with pytest.raises(CodealignError, match=message):
        build_trainer(base_dir, sft_records(1), [], replace(FAST, target="edits"), tmp_path, 0)


def test_sft_target_names_its_choices():
    assert SFTParams.from_dict({}, "sft").target == "code"
    with pytest.raises(
        CodealignError, match=r"^sft.target must be one of code, edits, got 'diff'$"
    ):
        SFTParams.from_dict({"target": "diff"}, "sft")
