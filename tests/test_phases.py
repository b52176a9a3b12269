"""The pretraining phase schedule (base_model.continue_*, base_model.cooldown_*): its
params, each phase's corpus, the order its steps see the blocks in, and a tiny run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codealign.errors import CodealignError
from codealign.params.edits import LintseqParams
from codealign.params.pretraining import BaseModelParams
from codealign.pretraining.base_model import pack, phase_rows, train_tokenizer
from codealign.tinyworld.corpus import make_corpus, pretraining_corpus

ROOT = Path(__file__).resolve().parents[1]
CODE = [
    'def add(a, b):\n    """Return a plus b."""\n    return a + b\n',
    'def twice(s):\n    """Return s repeated 2 times."""\n    return s * 2\n',
    'def first(xs):\n    """Return the first item of xs."""\n    return xs[0]\n',
]


def _base(**changes) -> BaseModelParams:
    return BaseModelParams.from_dict(
        {"steps": 100, "corpus_chars": 200_000, **changes}, "base_model"
    )


def _code_share(documents: list[dict]) -> float:
    code = sum(len(d["text"]) for d in documents if d["kind"] != "text")
    return code / sum(len(d["text"]) for d in documents)


def test_without_a_schedule_there_is_one_phase_and_the_corpus_it_always_was():
    base = _base(edit_share=0.0)
    (main,) = base.phases()
    assert (main.name, main.steps, main.corpus_chars, main.code_share) == (
        "main",
        100,
        200_000,
        0.25,
    )
    assert not base.scheduled
    lintseq = LintseqParams()
    assert pretraining_corpus(CODE, base, lintseq, 7) == make_corpus(CODE, 0.25, 200_000, 7)
    # An explicit 0 fraction is no phase either.
    assert not _base(cooldown_fraction=0).scheduled


def test_phases_split_steps_and_corpus_in_order():
    base = _base(
        code_share=0.5,
        continue_fraction=0.3,
        continue_code_share=0.1,
        cooldown_fraction=0.2,
        cooldown_code_share=0.25,
    )
    phases = base.phases()
    assert [(p.name, p.steps, p.corpus_chars, p.code_share) for p in phases] == [
        ("main", 50, 100_000, 0.5),
        ("continue", 30, 60_000, 0.1),
        ("cooldown", 20, 40_000, 0.25),
    ]
    assert sum(p.steps for p in phases) == base.steps
    assert [p.fraction for p in phases] == [0.5, 0.3, 0.2]


def test_each_phase_corpus_has_its_own_code_share():
    base = _base(
        code_share=0.5,
        edit_share=0.0,
        continue_fraction=0.5,
        continue_code_share=0.1,
        cooldown_fraction=0.2,
        cooldown_code_share=0.0,
    )
    corpus = pretraining_corpus(CODE, base, LintseqParams(), 0)
    names = [d["phase"] for d in corpus]
    # The phases follow each other: main, then continue, then cooldown.
    assert names == sorted(names, key=["main", "continue", "cooldown"].index)
    for phase in base.phases():
        docs = [d for d in corpus if d["phase"] == phase.name]
        chars = sum(len(d["text"]) for d in docs)
        assert chars == pytest.approx(phase.corpus_chars, abs=2_000)
        assert _code_share(docs) == pytest.approx(phase.code_share, abs=0.01), phase.name
    assert not [d for d in corpus if d["phase"] == "cooldown" and d["kind"] != "text"]
    # Same params and seed, same corpus; another seed, other English.
    assert corpus == pretraining_corpus(CODE, base, LintseqParams(), 0)
    assert corpus != pretraining_corpus(CODE, base, LintseqParams(), 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cooldown_fraction": 0.2}, r"base_model\.cooldown_code_share must be set"),
        ({"continue_code_share": 0.1}, r"base_model\.continue_code_share is 0\.1 but"),
        (
            {"cooldown_fraction": 0, "cooldown_code_share": 0.0},
            r"base_model\.cooldown_code_share is 0\.0 but base_model\.cooldown_fraction is 0",
        ),
        ({"cooldown_fraction": 1.0, "cooldown_code_share": 0.0}, r"base_model\.cooldown_fraction"),
        ({"cooldown_fraction": -0.1, "cooldown_code_share": 0.0}, r"base_model\.cooldown_fraction"),
        (
            {"cooldown_fraction": 0.2, "cooldown_code_share": 1.5},
            r"base_model\.cooldown_code_share",
        ),
        (
            {
                "continue_fraction": 0.6,
                "continue_code_share": 0.1,
                "cooldown_fraction": 0.4,
                "cooldown_code_share": 0.0,
            },
            r"base_model\.cooldown_fraction: the continue and cooldown fractions sum to 1",
        ),
        (
            {"cooldown_fraction": 0.001, "cooldown_code_share": 0.0},
            r"base_model\.cooldown_fraction \(0\.001\) gives no step of base_model\.steps",
        ),
        (
            {"name": "org/model", "cooldown_fraction": 0.2, "cooldown_code_share": 0.0},
            r"base_model\.cooldown_fraction: a phase schedule needs base_model\.name: tiny",
        ),
    ],
)
def test_impossible_schedules_are_one_error_naming_the_key(changes, message):
    with pytest.raises(CodealignError, match=message) as error:
        _base(**changes)
    assert "\n" not in str(error.value)


def test_phase_rows_keep_each_phase_to_its_steps():
    blocks = [[[p, i] for i in range(n)] for p, n in enumerate((7, 3, 5))]
    steps, batch = [4, 2, 3], 2
    rows = phase_rows(blocks, steps, batch, seed=0)
    assert len(rows) == sum(steps) * batch
    bounds = [0, 8, 12, 18]  # rows of steps 0-3, 4-5, 6-8
    for phase, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        taken = rows[start:end]
        assert {row[0] for row in taken} == {phase}
        size = len(blocks[phase])
        # An epoch of the phase's blocks before any of them repeats.
        first = taken[:size]
        assert len({tuple(r) for r in first}) == min(size, len(taken))
    assert rows == phase_rows(blocks, steps, batch, seed=0)
    assert rows != phase_rows(blocks, steps, batch, seed=1)


def test_trainer_takes_the_rows_in_order_and_cooldown_rows_hold_no_code(tmp_path):
    """On a tiny model: the scheduled Trainer's batches are the rows as ordered, and the
    rows of a text-only cooldown decode to English alone."""
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, TrainingArguments

    from codealign.pretraining.base_model import _in_order_trainer, build_model

    base = _base(
        corpus_chars=20_000,
        steps=10,
        batch_size=2,
        block_size=32,
        vocab_size=400,
        hidden_size=16,
        num_heads=2,
        num_layers=1,
        intermediate_size=32,
        edit_share=0.0,
        code_share=0.5,
        cooldown_fraction=0.3,
        cooldown_code_share=0.0,
    )
    corpus = pretraining_corpus(CODE, base, LintseqParams(), 0)
    tokenizer = train_tokenizer([d["text"] for d in corpus], base.vocab_size)
    phases = base.phases()
    per_phase = [
        pack(tokenizer, [d["text"] for d in corpus if d["phase"] == p.name], base.block_size)
        for p in phases
    ]
    rows = phase_rows(per_phase, [p.steps for p in phases], base.batch_size, 0)
    trainer = _in_order_trainer()(
        model=build_model(base, tokenizer, 0),
        args=TrainingArguments(
            output_dir=str(tmp_path / "trainer"),
            per_device_train_batch_size=base.batch_size,
            max_steps=base.steps,
            use_cpu=True,
            report_to=[],
            seed=0,
            data_seed=0,
        ),
        train_dataset=Dataset.from_dict({"input_ids": rows}),
        data_collator=DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm=False),
    )
    batches = [batch["input_ids"].tolist() for batch in trainer.get_train_dataloader()]
    assert batches == [rows[i : i + 2] for i in range(0, len(rows), 2)]
    main_steps = phases[0].steps
    assert main_steps == 7
    cooldown = tokenizer.decode([t for row in rows[main_steps * 2 :] for t in row])
    main = tokenizer.decode([t for row in rows[: main_steps * 2] for t in row])
    assert "def " in main and "return" in main
    assert "def " not in cooldown and "return " not in cooldown


def test_tiny_scheduled_run_records_its_phases(tmp_path):
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    raw["base_model"].update(steps=8, eval_tasks=0, cooldown_fraction=0.25, cooldown_code_share=0.0)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    run = [sys.executable, str(ROOT / "stages" / "seed.py"), "--params", str(params)]
    run += ["--out", str(tmp_path / "seed"), "--metrics", str(tmp_path / "seed.json")]
    assert subprocess.run(run, capture_output=True).returncode == 0
    stage = [sys.executable, str(ROOT / "stages" / "base_model.py"), "--params", str(params)]
    stage += ["--seed-dir", str(tmp_path / "seed"), "--out", str(tmp_path / "model")]
    stage += ["--metrics", str(tmp_path / "m.json"), "--live-dir", str(tmp_path / "live")]
    env_cache = {"CODEALIGN_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(stage, capture_output=True, text=True, env={**os.environ, **env_cache})
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    main, cooldown = metrics["phases"]
    assert (main["name"], main["steps"], main["code_share"]) == ("main", 6, 0.25)
    assert (cooldown["name"], cooldown["steps"], cooldown["code_share"]) == ("cooldown", 2, 0.0)
    assert cooldown["corpus_chars"]["code"] == cooldown["corpus_chars"]["edits"] == 0
    share = (main["corpus_chars"]["code"] + main["corpus_chars"]["edits"]) / sum(
        main["corpus_chars"].values()
    )
    assert share == pytest.approx(0.25, abs=0.02)
    assert (
        metrics["tokens_seen"]
        == 8 * raw["base_model"]["batch_size"] * raw["base_model"]["block_size"]
    )

    # A bad schedule: one line naming the key, no model written.
    raw["base_model"].update(cooldown_code_share=None)
    params.write_text(yaml.safe_dump(raw))
    stage[stage.index("--out") + 1] = str(tmp_path / "bad")
    bad = subprocess.run(stage, capture_output=True, text=True, env={**os.environ, **env_cache})
    assert bad.returncode != 0
    assert "base_model.cooldown_code_share must be set" in bad.stderr
    assert not (tmp_path / "bad").exists()
