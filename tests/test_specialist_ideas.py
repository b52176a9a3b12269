"""The ideas measured beside the K-specialists claim: specialists started from the K = 1
adapter (`specialists.init: generalist`) and a router that falls back to it where its
margin is small (`specialists.fallback_margin`); their params, collector and claims."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny_specialists import make_base_model, make_router_dir, sft_records

from codealign.errors import CodealignError
from codealign.params import load_params
from codealign.params.specialists import SFTParams, SpecialistsParams

ROOT = Path(__file__).resolve().parents[1]
FAST = SFTParams(
    batch_size=4, save_steps=2, logging_steps=1, learning_rate=5e-3, lora_r=4,
    epochs=1.0, lora_alpha=8, eval_batch_size=32, max_length=512,
)  # fmt: skip
QUESTIONS = [
    "Write a function add_3(x) that returns x plus 3.",
    "Write a function rep_2(s) that returns the string s repeated 2 times.",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny base model and a K = 1 sft dir over it (the generalist, random weights)."""
    root = tmp_path_factory.mktemp("ideas")
    base = make_base_model(root / "base", seed=0)
    generalist = make_router_dir(base, root / "sft_baseline", np.eye(1, 8, dtype=np.float32))
    return root, base, generalist


def lora_weights(model) -> dict[str, np.ndarray]:
    """The LoRA tensors of a PeftModel by their saved name (adapter name left out)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().numpy().copy() for k, v in get_peft_model_state_dict(model).items()}


# ---------------------------------------------------------------------------- params


def test_defaults_leave_the_pipeline_as_it_was():
    for profile in sorted((ROOT / "params").glob("*.yaml")):
        p = load_params(profile)["specialists"]
        assert (p.init, p.fallback_margin) == ("base", 0.0), profile.name
    assert SpecialistsParams() == SpecialistsParams(init="base", fallback_margin=0.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"init": "warm"}, r"^specialists.init must be one of base, generalist, got 'warm'$"),
        ({"fallback_margin": -0.1}, r"^specialists.fallback_margin must be a number in \[0, 2\]"),
        ({"fallback_margin": "x"}, r"^specialists.fallback_margin must be a number"),
        ({"fallback": 0.1}, r"^unknown params key 'specialists.fallback'"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(raw, message):
    with pytest.raises(CodealignError, match=message) as caught:
        SpecialistsParams.from_dict(raw, "specialists")
    assert "\n" not in str(caught.value)


def test_the_stages_depend_on_the_ideas_params_and_the_generalist():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    sft = stages["sft"]
    assert "specialists.init" in sft["params"] and "${generalist}" in sft["deps"]
    assert sft["vars"][0]["generalist"] == stages["sft_baseline"]["vars"][0]["out"]
    # The K = 1 stage does not read the section: toggling an idea never retrains it.
    assert not any(str(p).startswith("specialists") for p in stages["sft_baseline"]["params"])
    evaluate = stages["evaluate"]
    assert "specialists.fallback_margin" in evaluate["params"]
    assert "--generalist ${k1}" in evaluate["cmd"]


# ---------------------------------------------------------------------------- init


def test_a_generalist_initialised_specialist_starts_from_the_k1_weights(world, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from codealign.specialists.sft import build_trainer

    _, base, generalist = world
    saved = lora_weights(
        PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base), generalist / "adapter_0"
        )
    )
    trainer = build_trainer(
        base, sft_records(3), [], FAST, tmp_path / "ck", seed=0,
        init_adapter=generalist / "adapter_0",
    )  # fmt: skip
    start = lora_weights(trainer.model)
    assert start.keys() == saved.keys() and len(start) > 0
    assert all(np.array_equal(start[k], saved[k]) for k in saved)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)

    # A fresh adapter (the default) does not: its B matrices start at zero.
    fresh = lora_weights(
        build_trainer(base, sft_records(3), [], FAST, tmp_path / "f", seed=0).model
    )
    assert all(not v.any() for k, v in fresh.items() if "lora_B" in k)
    assert any(saved[k].any() for k in saved if "lora_B" in k)


@pytest.mark.slow
def test_train_specialists_from_the_generalist_fine_tunes_each_cluster(
    world, tmp_path, monkeypatch
):
    monkeypatch.setenv("CODEALIGN_CACHE", str(tmp_path / "cache"))
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from codealign.specialists.sft import train_specialists

    _, base, generalist = world
    records = sft_records(4)
    labels = [0 if r["id"].startswith("add") else 1 for r in records]
    embedder = {"model": "m", "identity": None, "prefix": "", "normalize": True}
    summary = train_specialists(
        base, records, [], labels, [], np.eye(2, 4, dtype=np.float32), embedder,
        replace(FAST, epochs=2.0), tmp_path / "sft", seed=0, init_adapter=generalist / "adapter_0",
    )  # fmt: skip
    assert summary["init"]["path"] == str(generalist / "adapter_0")
    # 4 items a cluster, batch 4, 2 epochs (the first step is warm-up at learning rate 0)
    assert [a["steps"] for a in summary["adapters"]] == [2, 2]
    start = lora_weights(
        PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base), generalist / "adapter_0"
        )
    )
    for i in range(2):
        trained = lora_weights(
            PeftModel.from_pretrained(
                AutoModelForCausalLM.from_pretrained(base), tmp_path / "sft" / f"adapter_{i}"
            )
        )
        assert trained.keys() == start.keys()
        # Moved by a step from the generalist: near it, not equal to it.
        diffs = [float(np.abs(trained[k] - start[k]).max()) for k in start]
        assert max(diffs) > 0 and max(diffs) < 0.1


def test_the_stage_refuses_a_generalist_that_is_not_a_k1_dir(world, tmp_path):
    from stage_scripts import stage_module

    generalist_adapter = stage_module("sft").generalist_adapter

    root, base, generalist = world
    assert generalist_adapter(generalist, base) == generalist / "adapter_0"
    with pytest.raises(CodealignError, match=r"not found; run the sft_baseline stage first$"):
        generalist_adapter(tmp_path / "missing", base)
    three = make_router_dir(base, tmp_path / "k3", np.eye(3, 8, dtype=np.float32))
    with pytest.raises(CodealignError, match=r"holds 3 adapters, not the K = 1 one$"):
        generalist_adapter(three, base)
    other = make_base_model(tmp_path / "other", seed=1)
    with pytest.raises(CodealignError, match=r"trained on another base model"):
        generalist_adapter(generalist, other)


# ---------------------------------------------------------------------------- fallback


def test_cosine_margins():
    from codealign.specialists.cluster import cosine_margins

    centroids = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    margins = cosine_margins(vectors, centroids)
    np.testing.assert_allclose(margins, [1.0, 0.0, 1.0], atol=1e-7)
    assert np.isinf(cosine_margins(vectors, centroids[:1])).all()


@pytest.mark.slow
def test_fallback_sends_low_margin_questions_to_the_generalist(world, tmp_path):
    from codealign.lm.embedding import Embedder, model_identity
    from codealign.params.lm import EmbedParams
    from codealign.specialists.cluster import cosine_margins, embedder_spec
    from codealign.specialists.routing import Router

    _, base, generalist = world
    params = EmbedParams()
    v = Embedder(params).embed(QUESTIONS)
    # Question 0 lies between two near-equal centroids; question 1 is alone at its own.
    centroids = np.stack([v[0], v[0] + 0.01 * v[1], v[1]]).astype(np.float32)
    margins = cosine_margins(v, centroids)
    assert margins[0] < 0.01 < 0.2 < margins[1]
    spec = embedder_spec(params, model_identity(params.model))
    routed = make_router_dir(base, tmp_path / "sft", centroids, embedder=spec, seed=5)

    plain = Router(routed)
    assert plain.names == ["cluster_0", "cluster_1", "cluster_2"]  # the default: no fallback
    assert plain.route(QUESTIONS) == [0, 2]

    router = Router(routed, fallback=generalist, fallback_margin=0.05)
    assert router.k == 3 and router.adapters == 4
    assert router.route(QUESTIONS) == [3, 2]  # index K: the generalist
    answers = router.generate(QUESTIONS, max_new_tokens=12)
    alone = Router(generalist).generate(QUESTIONS[:1], max_new_tokens=12)
    specialist = plain.generate(QUESTIONS[1:], max_new_tokens=12)
    assert answers[0][1] == alone[0][1] and answers[1][1] == specialist[0][1]

    with pytest.raises(CodealignError, match=r"needs the K = 1 sft dir to fall back to$"):
        Router(routed, fallback_margin=0.05)
    with pytest.raises(CodealignError, match=r"holds 3 adapters, not the K = 1 one$"):
        Router(routed, fallback=routed, fallback_margin=0.05)


def test_the_margin_sweep_scores_each_threshold_and_chooses_the_best():
    from codealign.specialists.fallback import choose, sweep, task_pass_rates

    verdicts = [
        {"task_id": "a", "passed": True},
        {"task_id": "a", "passed": False},
        {"task_id": "b", "passed": False},
        {"task_id": "b", "passed": False},
    ]
    assert task_pass_rates(verdicts) == {"a": 0.5, "b": 0.0}
    margins = {"a": 0.01, "b": 0.04, "c": 0.5}
    specialist = {"a": 0.0, "b": 1.0, "c": 0.5}
    generalist = {"a": 1.0, "b": 0.0, "c": 1.0}
    rows = sweep(margins, specialist, generalist, [0.0, 0.02, 0.05])
    assert [r["pass@1"] for r in rows] == [0.5, 2.5 / 3, 1.5 / 3]
    assert [r["fallback_share"] for r in rows] == [0.0, 1 / 3, 2 / 3]
    assert choose(rows) == 0.02
    tie = [{"fallback_margin": m, "pass@1": 0.5} for m in (0.0, 0.1)]
    assert choose(tie) == 0.0  # equal scores: fall back the least


def test_the_margin_sweep_refuses_bad_margins_in_one_line(tmp_path):
    from codealign.cli import main as cli

    result = CliRunner().invoke(cli, ["fallback-margin", "--margins", "0.1,-2"])
    assert result.exit_code == 2 and "every margin must lie in [0, 2]" in result.output
    assert not (tmp_path / "out.json").exists()


# ---------------------------------------------------------------------------- collector


def _exp_show(tmp_path: Path) -> Path:
    """The K sweep fixture, with the k = 5 experiments turned into idea runs."""
    dump = json.loads((Path(__file__).parent / "fixtures" / "exp_show.json").read_text())

    def revs(rows):
        for row in rows:
            yield row
            for experiment in row["experiments"] or []:
                yield from experiment["revs"]

    for rev in revs(dump):
        params = rev["data"]["params"]["params.yaml"]["data"]
        if params.get("k") == 5 and rev["rev"] != "workspace":
            params["specialists"] = {"init": "generalist", "fallback_margin": 0.0}
            params["train_seed"] = params["seed"]  # the fixture sweeps the master seed
    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(dump))
    return path


def test_the_collector_writes_one_record_per_idea_run_and_the_claims_select_them(tmp_path):
    from codealign.findings.claims import CLAIMS
    from codealign.findings.table import assess, load_records
    from codealign.sweeps.specialist_ideas import specialist_ideas_command

    out, runs = tmp_path / "ideas.json", tmp_path / "runs"
    argv = ["--k", "5", "--from-json", str(_exp_show(tmp_path)), "--out", str(out)]
    result = CliRunner().invoke(specialist_ideas_command, [*argv, "--runs-dir", str(runs)])

    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [(r["init"], r["train_seed"]) for r in data["runs"]] == [
        ("generalist", s) for s in (0, 1, 2)
    ]
    assert [r["models"]["routed"]["pass@1"] for r in data["runs"]] == [0.30, 0.40, 0.20]
    assert data["provenance"]["command"].startswith("codealign specialist-ideas --k 5")
    records = load_records(runs)
    assert len(records) == 3 and {r["sweep"] for r in records} == {"specialist_ideas"}

    claims = {c.id: c for c in CLAIMS}
    init_row = assess(claims["specialists-from-generalist"], records)
    assert init_row["verdict"] != "not measured"
    assert len(init_row["comparisons"][0]["seed_values"]) == 3
    assert assess(claims["specialists-with-fallback"], records)["verdict"] == "not measured"
    # The K claim's own rows never take in an idea's runs.
    assert assess(claims["specialists-equal-epochs"], records)["verdict"] == "not measured"

    result = CliRunner().invoke(specialist_ideas_command, [*argv[:1], "10", *argv[2:]])
    assert result.exit_code == 2 and result.output.startswith("error: ")


@pytest.mark.slow
def test_evaluate_and_the_margin_sweep_with_a_fallback(world, tmp_path, monkeypatch):
    """Two equal centroids give every question margin 0: with any margin above 0 the
    routed model answers everything with the generalist, as the k1 model does."""
    import yaml
    from stage_scripts import stage
    from test_evaluation import tinyeval_task

    from codealign.io import read_jsonl, write_jsonl
    from codealign.lm.embedding import model_identity
    from codealign.params.lm import EmbedParams
    from codealign.specialists.cluster import embedder_spec

    _, base, generalist = world
    params_embed = EmbedParams()
    spec = embedder_spec(params_embed, model_identity(params_embed.model))
    routed = make_router_dir(base, tmp_path / "sft", np.ones((2, 384), np.float32), spec, seed=3)
    seed_dir = tmp_path / "seed"
    tasks = [tinyeval_task(i) for i in range(1, 4)]
    write_jsonl(seed_dir / "tinyeval.jsonl", tasks)
    write_jsonl(
        seed_dir / "tinydev.jsonl", [{**t, "task_id": f"tinydev/{i}"} for i, t in enumerate(tasks)]
    )
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["eval"].update(n=2, pass1_temperature=1.0, passk_temperature=1.5, max_new_tokens=8)
    params["eval"].update(batch_size=4, workers=1)
    params["specialists"]["fallback_margin"] = 0.05
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out = tmp_path / "evaluate"
    result = CliRunner().invoke(
        stage("evaluate"),
        [
            "--params", str(params_file), "--model", f"k1={generalist}",
            "--model", f"routed={routed}", "--generalist", str(generalist),
            "--seed-dir", str(seed_dir), "--out", str(out),
            "--metrics", str(tmp_path / "m.json"), "--table", str(tmp_path / "m.md"),
            "--embed-cache-dir", str(tmp_path / "embed-cache"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    models = json.loads((tmp_path / "m.json").read_text())["tinyeval"]["models"]
    assert models["routed"]["fallback_margin"] == 0.05 and models["routed"]["k"] == 2
    assert models["routed"]["tasks_by_cluster"] == [0, 0, 3]  # the last: the generalist
    assert "fallback_margin" not in models["k1"]
    for tag in ("pass1", "passk"):
        mine = read_jsonl(out / "tinyeval" / "routed" / f"samples_{tag}.jsonl")
        theirs = read_jsonl(out / "tinyeval" / "k1" / f"samples_{tag}.jsonl")
        assert [s["completion"] for s in mine] == [s["completion"] for s in theirs]

    from codealign.cli import main as cli

    monkeypatch.chdir(tmp_path)  # the sweep's provenance asks git and profiles here
    sweep_out = tmp_path / "fallback.json"
    result = CliRunner().invoke(
        cli,
        [
            "fallback-margin", "--params", str(params_file), "--routed", str(routed),
            "--generalist", str(generalist), "--seed-dir", str(seed_dir),
            "--margins", "0.01,0.5", "--out", str(sweep_out),
            "--embed-cache-dir", str(tmp_path / "embed-cache"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(sweep_out.read_text())
    assert data["benchmark"] == "tinydev" and data["tasks"] == 3
    assert [r["fallback_margin"] for r in data["sweep"]] == [0.0, 0.01, 0.5]
    assert [r["fallback_share"] for r in data["sweep"]] == [0.0, 1.0, 1.0]
    best = max(r["pass@1"] for r in data["sweep"])
    assert data["chosen"] == min(r["fallback_margin"] for r in data["sweep"] if r["pass@1"] == best)
    assert data["provenance"]["command"].startswith("codealign fallback-margin")


def test_runs_from_before_the_section_stay_in_the_k_sweep():
    from collections import Counter

    from codealign.sweeps.experiments import ExperimentRow, same_configuration

    def row(rev: str, params: dict) -> ExperimentRow:
        return ExperimentRow(rev=rev, name=None, timestamp=None, order=0, params=params,
                             metrics=None)  # fmt: skip

    section = load_params(ROOT / "params.yaml")["specialists"].to_dict()
    workspace = row("workspace", {"k": 5, "specialists": section})
    older = row("a" * 40, {"k": 10})  # made before `specialists` existed: it ran as base
    idea = row("b" * 40, {"k": 5, "specialists": {**section, "init": "generalist"}})
    skipped: Counter = Counter()
    assert same_configuration([workspace, older, idea], ("k",), skipped) == [workspace, older]
    assert skipped == Counter({"with other params than the workspace (specialists.init)": 1})
