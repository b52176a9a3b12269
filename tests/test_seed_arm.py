"""The seed-only arm: `sft_baseline.train_data: seed`, its collector and its claim.

The stage tests run the smoke profile's seed, synth, dedup and embed stages into a
scratch directory, then the sft stage's K = 1 baseline on them, once per arm.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage
from tiny_specialists import make_base_model

from codealign.curation.dedup import read_sft_jsonl
from codealign.errors import CodealignError
from codealign.findings.claims import CLAIMS
from codealign.findings.table import assess, by_seed
from codealign.params import load_params
from codealign.params.specialists import SFTBaselineParams
from codealign.specialists.sft import optimizer_steps, seed_records
from codealign.sweeps.records import SCHEMA, build_record

ROOT = Path(__file__).resolve().parents[1]


def _params(tmp_path: Path, name: str = "params.yaml", **changes) -> Path:
    """params/smoke.yaml with `section.key` changes, written under tmp_path."""
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def _invoke(name: str, args: list[str]):
    result = CliRunner().invoke(stage(name), args)
    assert result.exit_code == 0, f"{name}: {result.output}"
    return result


# ---------------------------------------------------------------------------- params


def test_the_default_is_curated_in_every_profile():
    assert SFTBaselineParams().train_data == "curated"
    for path in [ROOT / "params.yaml", *sorted((ROOT / "params").glob("*.yaml"))]:
        assert load_params(path)["sft_baseline"].train_data == "curated", path.name


def test_a_bad_train_data_is_one_line_naming_the_key_and_writes_nothing(tmp_path):
    params = _params(tmp_path, **{"sft_baseline.train_data": "seeds"})
    with pytest.raises(CodealignError) as caught:
        load_params(params)
    assert str(caught.value) == (
        "sft_baseline.train_data must be one of curated, seed, got 'seeds'"
    )
    out, metrics = tmp_path / "sft_baseline", tmp_path / "sft_baseline.json"
    args = ["--baseline", "--params", str(params), "--data-dir", str(tmp_path / "none")]
    args += ["--out", str(out), "--metrics", str(metrics), "--live-dir", str(tmp_path / "live")]
    result = CliRunner().invoke(stage("sft"), args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "sft_baseline.train_data" in lines[0], result.output
    assert not out.exists() and not metrics.exists()


def test_only_sft_baseline_declares_the_section_and_evaluate_scores_its_adapter_as_k1():
    # `dvc exp run -S sft_baseline.train_data=seed evaluate` then reruns sft_baseline and
    # what reads models/sft_baseline, never the K specialists (`sft`) or lintseq_eval.
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declaring = {name for name, s in stages.items() if "sft_baseline" in s.get("params", [])}
    assert declaring == {"sft_baseline"}
    assert "--baseline" in stages["sft_baseline"]["cmd"]
    evaluate = stages["evaluate"]
    k1 = next(v["k1"] for v in evaluate["vars"] if "k1" in v)
    assert k1 == next(v["out"] for v in stages["sft_baseline"]["vars"] if "out" in v)
    assert "k1=${k1}" in evaluate["cmd"] and "${k1}" in evaluate["deps"]


def test_the_seed_arm_experiment_reruns_sft_baseline_and_evaluate_only():
    # `dvc exp run -S sft_baseline.train_data=seed evaluate`: of the stages it runs, those
    # that read the param or a stage that does.
    import networkx as nx
    from dvc.repo import Repo

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    with Repo(str(ROOT), uninitialized=True) as repo:
        graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
        (target,) = [s for s in graph.nodes if s.name == "evaluate"]
        ran = nx.descendants(graph, target) | {target}

        def reads(stage) -> bool:
            return "sft_baseline" in stages[stage.name.split("@")[0]].get("params", [])

        rerun = {s.name for s in ran if reads(s) or any(map(reads, nx.descendants(graph, s)))}
    # sft starts from the K = 1 adapter when specialists.init is generalist, so it
    # depends on models/sft_baseline and reruns too (docs/specialists.md).
    assert rerun == {"sft_baseline", "sft", "evaluate"}


def test_optimizer_steps_is_what_the_trainer_took_for_the_committed_baseline():
    # metrics/sft_baseline.json: the default profile's K = 1 run, trained by transformers.
    run = json.loads((ROOT / "metrics" / "sft_baseline.json").read_text())
    (adapter,) = run["adapters"]
    sft = load_params(ROOT / "params.yaml")["sft"]
    assert optimizer_steps(adapter["train_items"], sft) == adapter["steps"]
    assert optimizer_steps(100, sft, world_size=2) == 6 * 4  # 50 items per process


# ---------------------------------------------------------------------------- smoke data


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile's seed sets, curated set and embeddings, and a tiny base model."""
    root = tmp_path_factory.mktemp("seedarm")
    params = _params(root)
    cache = ["--cache-dir", str(root / "cache")]
    seed, synth, dedup, embed = (root / n for n in ("seed", "synth", "dedup", "embed"))
    _invoke(
        "seed", ["--params", str(params), "--out", str(seed), "--metrics", str(root / "s.json")]
    )
    _invoke(
        "synth",
        ["--params", str(params), "--seed-dir", str(seed), "--out", str(synth)]
        + ["--metrics", str(root / "synth.json")],
    )
    inputs = [
        arg
        for name in ("s1_star", "s2", "s3", "s4", "s5")
        for arg in ("--input", str(synth / f"{name}.jsonl"))
    ]
    _invoke(
        "dedup",
        ["--params", str(params), *inputs, "--eval-file", str(seed / "tinyeval.jsonl")]
        + ["--eval-file", str(seed / "tinydev.jsonl"), "--pool-file", str(seed / "pool.jsonl")]
        + ["--out", str(dedup), "--metrics", str(root / "dedup.json"), *cache],
    )
    _invoke(
        "embed", ["--params", str(params), "--data-dir", str(dedup), "--out", str(embed)] + cache
    )
    base = make_base_model(root / "base")
    return {"root": root, "seed": seed, "dedup": dedup, "embed": embed, "base": base}


def _seed_sets(seed_dir: Path) -> dict[str, dict]:
    return {
        str(r["id"]): r
        for name in ("s1.jsonl", "s2.jsonl")
        for r in read_sft_jsonl(seed_dir / name)
    }


@pytest.mark.slow
def test_seed_records_are_the_s1_s2_items_of_the_curated_set(smoke):
    curated = read_sft_jsonl(smoke["dedup"] / "train.jsonl")
    chosen = seed_records(curated, "train.jsonl")
    seeds = _seed_sets(smoke["seed"])
    # Only S1 and S2 items, each the seed stage's own question and code.
    for record in chosen:
        original = seeds[str(record["id"])]
        assert (record["question"], record["code"]) == (original["question"], original["code"])
    # Every curated item that is an S1 or S2 item, in the curated order, and nothing else.
    assert [r["id"] for r in chosen] == [r["id"] for r in curated if str(r["id"]) in seeds]
    assert {r["source"] for r in chosen} == {"seed_s1", "seed_s2"}
    assert len(chosen) < len(curated)  # the smoke curated set holds synthetic items
    with pytest.raises(CodealignError, match=r"^x.jsonl: no record with source seed_s1 or"):
        seed_records([r for r in curated if r not in chosen], "x.jsonl")


def _baseline(smoke: dict, tmp_path: Path, train_data: str) -> tuple[dict, dict]:
    params = _params(tmp_path, **{"sft_baseline.train_data": train_data})
    out = tmp_path / "sft_baseline"
    args = ["--baseline", "--params", str(params), "--data-dir", str(smoke["dedup"])]
    args += ["--embed-dir", str(smoke["embed"]), "--base", str(smoke["base"])]
    args += ["--out", str(out), "--live-dir", str(tmp_path / "live")]
    args += ["--metrics", str(tmp_path / "sft_baseline.json")]
    _invoke("sft", args)
    metrics = json.loads((tmp_path / "sft_baseline.json").read_text())
    return metrics, json.loads((out / "router.json").read_text())


@pytest.mark.slow
def test_the_seed_arm_trains_on_s1_s2_for_the_curated_arms_steps(smoke, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEALIGN_CACHE", str(tmp_path / "cache"))
    curated = read_sft_jsonl(smoke["dedup"] / "train.jsonl")
    validation = read_sft_jsonl(smoke["dedup"] / "validation.jsonl")
    seeds = _seed_sets(smoke["seed"])
    in_seed = [r for r in curated if str(r["id"]) in seeds]

    (tmp_path / "curated").mkdir()
    default, default_router = _baseline(smoke, tmp_path / "curated", "curated")
    (tmp_path / "seed").mkdir()
    seed, seed_router = _baseline(smoke, tmp_path / "seed", "seed")

    # The default is unchanged: every curated item, the epochs' steps, no key in router.json.
    assert default["train_data"] == "curated" and default["train_items"] == len(curated)
    assert sum(default["train_sources"].values()) == len(curated)
    assert "train_data" not in default_router and "steps_of" not in default
    steps = default["adapters"][0]["steps"]
    sft = load_params(tmp_path / "curated" / "params.yaml")["sft"]
    assert steps == optimizer_steps(len(curated), sft)
    # The seed arm: only the S1 and S2 items, as many steps, the same validation items.
    assert seed["train_data"] == "seed" and seed_router["train_data"] == "seed"
    assert seed["train_items"] == len(in_seed)
    assert seed["train_sources"] == dict(sorted(Counter(r["source"] for r in in_seed).items()))
    assert seed["adapters"][0]["steps"] == steps > optimizer_steps(len(in_seed), sft)
    assert seed["steps_of"] == {"curated_items": len(curated), "max_steps": steps}
    assert seed["validation_items"] == default["validation_items"] == len(validation)


# ---------------------------------------------------------------------------- collector


FIXTURE = ROOT / "tests" / "fixtures" / "exp_show.json"


def _entry(template: dict, rev: str, name: str | None, ts: str | None, params: dict, k1) -> dict:
    """A `dvc exp show --json` rev entry with these params and K = 1 scores (None: none)."""
    entry = copy.deepcopy(template)
    entry["rev"] = entry["data"]["rev"] = rev
    entry["name"], entry["data"]["timestamp"] = name, ts
    entry["data"]["params"]["params.yaml"]["data"] = params
    models = entry["data"]["metrics"]["metrics/evaluate.json"]["data"]["tinyeval"]["models"]
    models.pop("routed")
    if k1 is None:
        models.pop("k1")
    else:
        models["k1"] = {"k": 1, "model": "models/sft_baseline", **k1}
    return entry


def _dump() -> list:
    """Both arms at train seeds 0-2, plus what the collector must leave out."""
    shown = json.loads(FIXTURE.read_text())
    template = shown[0]
    base = {"seed": 0, "k": 5, "train_seed": None, "sft": {"epochs": 6.0}}

    def params(train_seed, data=None, **sft):
        p = copy.deepcopy(base)
        p["train_seed"] = train_seed
        p["sft"].update(sft)
        if data is not None:
            p["sft_baseline"] = {"train_data": data}
        return p

    def scores(seed, data, pass1):
        s = {"pass@1": pass1, "pass@10_t0.8": pass1 + 0.2, "train_seed": seed}
        return {**s, "train_data": data} if data else s

    workspace = _entry(template, "workspace", None, None, params(None, "curated"),
                       scores(0, "curated", 0.60))  # fmt: skip
    experiments = []
    n = 0

    def add(name, p, k1):
        nonlocal n
        n += 1
        rev = f"{n:040x}"
        entry = _entry(template, rev, name, f"2026-01-0{n}T00:00:00", p, k1)
        experiments.append({"executor": None, "name": name, "revs": [entry]})

    for seed, (cur, sd) in enumerate([(0.60, 0.40), (0.55, 0.45), (0.70, 0.50)]):
        # The curated arm of seed 0 is an old run made before the key existed.
        data = None if seed == 0 else "curated"
        add(f"cur{seed}", params(seed, data), scores(seed, data, cur))
        add(f"seed{seed}", params(seed, "seed"), scores(seed, "seed", sd))
    # `-S sft_baseline.train_data=seed -S train_seed=1 sft_baseline`: evaluate did not
    # rerun, so its scores are its baseline's curated ones.
    add("stale", params(1, "seed"), scores(1, "curated", 0.99))
    add("epochs", params(2, "seed", epochs=30.0), scores(2, "seed", 0.99))  # another config
    baseline = _entry(template, "b" * 40, None, "2025-12-01T00:00:00", params(None, "curated"),
                      scores(0, "curated", 0.60))  # fmt: skip
    baseline["experiments"] = experiments
    workspace["experiments"] = None
    return [workspace, baseline]


def _collect(tmp_path: Path, dump: list):
    from codealign.sweeps.train_data import train_data_command

    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(dump))
    out, runs = tmp_path / "train_data.json", tmp_path / "runs"
    argv = ["--from-json", str(path), "--out", str(out), "--runs-dir", str(runs)]
    result = CliRunner().invoke(train_data_command, argv)
    return result, out, runs


def test_the_collector_pairs_both_arms_by_train_seed_and_skips_stale_scores(tmp_path):
    result, out, runs = _collect(tmp_path, _dump())

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    by_arm = {(r["train_data"], r["train_seed"]): r for r in summary["runs"]}
    assert {arm: [s for a, s in by_arm if a == arm] for arm in ("curated", "seed")} == {
        "curated": [0, 1, 2],
        "seed": [0, 1, 2],
    }
    assert [by_arm[("seed", s)]["pass@1"] for s in (0, 1, 2)] == [0.40, 0.45, 0.50]
    assert by_arm[("curated", 0)]["name"] == "cur0"  # no key: a curated run
    assert summary["paired_seeds"] == [0, 1, 2]
    diff = summary["curated_minus_seed"]["pass@1"]
    assert diff["values"] == pytest.approx([0.20, 0.10, 0.20])
    assert "stale" not in {r["name"] for r in summary["runs"]}
    assert "epochs" not in {r["name"] for r in summary["runs"]}
    assert "1 k1 scores of another train_seed or data (stale" in result.stderr
    assert "with other params than the workspace (sft.epochs)" in result.stderr
    records = [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]
    assert len(records) == 6
    swept = sorted(
        (r["swept"]["sft_baseline.train_data"], r["swept"]["train_seed"]) for r in records
    )
    assert swept == [(a, s) for a in ("curated", "seed") for s in (0, 1, 2)]
    assert all(r["sweep"] == "train_data" for r in records)
    assert all(r["command"].startswith("codealign train-data --out ") for r in records)
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["train_data", "seeds", "pass@1", "pass@10_t0.8"]
    assert lines[-1].startswith("curated - seed\t3\t0.167 [0.100, 0.200]")


def test_the_k_sweep_leaves_the_seed_arm_out(tmp_path):
    from codealign.sweeps.experiments import ksweep_command

    dump = _dump()
    for entry in [dump[0]] + [e["revs"][0] for e in dump[1]["experiments"]] + [dump[1]]:
        models = entry["data"]["metrics"]["metrics/evaluate.json"]["data"]["tinyeval"]["models"]
        if "k1" in models:
            models["routed"] = {**models["k1"], "k": 5}
    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(dump))
    argv = ["--from-json", str(path), "--out", str(tmp_path / "k.json")]
    argv += ["--plot", str(tmp_path / "k.png"), "--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(ksweep_command, argv)

    assert result.exit_code == 0, result.output
    names = {run["name"] for run in json.loads((tmp_path / "k.json").read_text())["runs"]}
    assert names == {"cur0", "cur1", "cur2"}
    assert "with other params than the workspace (sft_baseline.train_data)" in result.stderr


# ---------------------------------------------------------------------------- the claim


TASKS = [f"tinyeval/{i}" for i in range(30)]


def _record(sweep: str, seed: int, params: dict, rates: list[float], **swept) -> dict:
    """A run record whose k1 model passes each task at `rates` (10 samples each)."""
    counts = {t: [round(r * 10), 10] for t, r in zip(TASKS, rates, strict=True)}
    return build_record(
        sweep=sweep,
        run=f"{sweep}-{'-'.join(f'{k}={v}' for k, v in swept.items())}-{seed}",
        command=f"codealign {sweep}",
        commit="c" * 40,
        dirty=False,
        experiment={"rev": f"{seed}" * 40, "name": None, "timestamp": None},
        profile="default",
        params={"seed": 0, "k": params.pop("k", 5), "train_seed": seed, **params},
        swept={**swept, "train_seed": seed},
        varies=["train_seed"],
        metrics={"models": {"k1": {"pass@1": sum(rates) / len(rates)}}},
        tasks={"k1/pass1": counts},
        tasks_missing={},
    )


def _rates(shift: float) -> list[float]:
    return [min(1.0, max(0.0, 0.5 + shift + 0.3 * ((i % 5) - 2) / 2)) for i in range(30)]


def test_the_claim_pairs_the_curated_and_seed_records_by_train_seed_and_task(tmp_path):
    seed_arm = {"sft_baseline": {"train_data": "seed"}}
    records = []
    for s in (0, 1, 2):
        # The curated arm's record of seed 0 predates the key: it counts as curated.
        curated = {} if s == 0 else {"sft_baseline": {"train_data": "curated"}}
        records.append(_record("train_data", s, curated, _rates(0.2), arm="curated"))
        records.append(_record("train_data", s, copy.deepcopy(seed_arm), _rates(0.0), arm="seed"))
        # Distractors: K sweep runs (another sweep), one of them on the seed arm.
        records.append(_record("ksweep", s, {}, _rates(-0.4), k="5"))
    records.append(_record("ksweep", 3, copy.deepcopy(seed_arm), _rates(0.4), k="5"))
    for i, record in enumerate(records):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(record))
        record["_path"] = str(path)
    assert all(r["schema"] == SCHEMA for r in records)
    claims = {claim.id: claim for claim in CLAIMS}

    row = assess(claims["curated-beats-seed"], records)

    assert row["verdict"] == "supports"
    (c,) = row["comparisons"]
    assert [v["train_seed"] for v in c["seed_values"]] == [0, 1, 2]
    assert c["seeds_with_tasks"] == 3 and c["tasks"] == [30, 30, 30]
    assert c["mean"] == pytest.approx(0.2, abs=0.02) and c["low"] > 0
    used = {json.loads(Path(p).read_text())["run_id"] for p in c["records"]}
    assert used == {r["run_id"] for r in records if r["sweep"] == "train_data"}
    assert "codealign train-data" in row["command"]
    assert "-S sft_baseline.train_data=$d -S train_seed=$seed evaluate" in row["command"]
    # The specialists claims' K = 1 arm never takes a seed-arm record (train_seed 3).
    for claim in ("specialists-equal-epochs", "specialists-equal-steps"):
        chosen = by_seed(records, claims[claim].b, ("train_seed",))
        assert sorted(key[1] for key in chosen) == [0, 1, 2], claim


def test_a_run_made_before_the_section_matches_its_profile_as_curated():
    from codealign.sweeps.records import profile_of

    full = yaml.safe_load((ROOT / "params" / "full.yaml").read_text())
    swept = ("k", "train_seed")
    older = {key: value for key, value in full.items() if key != "sft_baseline"}
    assert profile_of(older, swept, ROOT) == "full"
    full["sft_baseline"]["train_data"] = "seed"
    assert profile_of(full, swept, ROOT) is None  # another configuration of the profile
    assert profile_of(full, (*swept, "sft_baseline.train_data"), ROOT) == "full"
