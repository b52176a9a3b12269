"""tinyeval and tinydev are held out: no task of theirs has a twin up to renaming on the
training side (the pretraining corpus, S1/S2, the DPO pool), by the AST key that
decontamination uses and by the tiny world's semantic and function keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codealign.curation.dedup import ast_keys, eval_task_from_record
from codealign.curation.seed import tinyworld_seed_sets
from codealign.edits.lintseq import apply_edits, parse_target
from codealign.params import load_params
from codealign.tinyworld.corpus import pretraining_corpus
from codealign.tinyworld.world import build_world

ROOT = Path(__file__).resolve().parents[1]
PROFILES = {"smoke": ROOT / "params" / "smoke.yaml", "default": ROOT / "params.yaml"}


@pytest.fixture(scope="module", params=sorted(PROFILES))
def built(request):
    params = load_params(PROFILES[request.param])
    data = params["data"]
    sets = tinyworld_seed_sets(data, params.seed)
    world = build_world(
        params.seed, data.n_train, data.n_pool, data.n_eval, data.n_dev, names=data.names
    )
    return request.param, params, sets, world


def training_programs(profile, params, sets) -> dict[str, list[str]]:
    """Every training-side program, by where it is; the corpus only for the smoke world
    (the default corpus draws its code from the same train.jsonl, checked here too)."""
    programs = {
        "train.jsonl": [r["prompt"] + r["canonical_solution"] for r in sets["train.jsonl"]],
        "s1.jsonl": [r["code"] for r in sets["s1.jsonl"]],
        "s2.jsonl": [r["code"] for r in sets["s2.jsonl"]],
        "pool.jsonl": [r["prompt"] + r["canonical_solution"] for r in sets["pool.jsonl"]],
    }
    if profile == "smoke":
        corpus = pretraining_corpus(
            programs["train.jsonl"], params["base_model"], params["lintseq"], params.seed
        )
        code = [d["text"] for d in corpus if d["kind"] == "code"]
        edits = [apply_edits(parse_target(d["text"])) for d in corpus if d["kind"] == "edits"]
        assert code and edits
        programs["corpus"] = code + edits
    return programs


def test_the_seed_sets_are_the_world_s_splits(built):
    _, _, sets, world = built
    assert sets["tinyeval.jsonl"] == [t.to_problem() for t in world.eval]
    assert sets["tinydev.jsonl"] == [t.to_problem() for t in world.dev]
    assert sets["pool.jsonl"] == [t.to_problem() for t in world.pool]


def test_no_held_out_task_has_a_renamed_twin_on_the_training_side(built):
    profile, params, sets, _ = built
    held: dict[str, str] = {}
    for name in ("tinyeval.jsonl", "tinydev.jsonl"):
        for i, record in enumerate(sets[name]):
            task = eval_task_from_record(record, name, f"{name}:{i + 1}")
            assert len(task.ast_keys) == 1
            held.update(dict.fromkeys(task.ast_keys, task.task_id))
    # Two held-out functions may share an AST key (n * 5, s * 5): both stay held out.
    assert len(held) >= 0.9 * (len(sets["tinyeval.jsonl"]) + len(sets["tinydev.jsonl"]))
    for where, programs in training_programs(profile, params, sets).items():
        twins = [
            (i, held[key]) for i, p in enumerate(programs) for key in ast_keys(p) if key in held
        ]
        assert not twins, f"{profile} {where}: renamed twins of held-out tasks {twins[:3]}"


def test_no_held_out_function_is_on_the_training_side_by_semantic_or_function_key(built):
    profile, _, sets, world = built
    by_id = {t.task_id: t for split in world.tasks.values() for t in split}
    train_side = [by_id[r["task_id"]] for r in sets["train.jsonl"] + sets["pool.jsonl"]]
    train_side += [by_id[r["id"]] for r in sets["s1.jsonl"] + sets["s2.jsonl"]]
    semantic = {t.semantic for t in train_side}
    function = {t.function for t in train_side}
    for held in (world.eval, world.dev):
        assert held, profile
        assert not {t.semantic for t in held} & semantic, profile
        assert not {t.function for t in held} & function, profile
    assert not {t.function for t in world.eval} & {t.function for t in world.dev}


def test_tinydev_and_tinyeval_load_by_benchmark_name(built, tmp_path):
    from codealign.curation.seed import write_seed_sets
    from codealign.errors import CodealignError
    from codealign.problems import tiny_benchmark_records

    profile, _, sets, _ = built
    if profile != "smoke":
        pytest.skip("one profile is enough")
    write_seed_sets(sets, tmp_path)
    assert tiny_benchmark_records("tinydev", tmp_path) == sets["tinydev.jsonl"]
    assert tiny_benchmark_records("tinyeval", tmp_path) == sets["tinyeval.jsonl"]
    with pytest.raises(CodealignError, match="unknown tiny-world benchmark 'tinytest'"):
        tiny_benchmark_records("tinytest", tmp_path)
    (tmp_path / "tinydev.jsonl").write_text("")
    with pytest.raises(CodealignError, match=r"tinydev\.jsonl: no tasks"):
        tiny_benchmark_records("tinydev", tmp_path)


# ---- who reads tinyeval: the final evaluations alone score models on it ------------------

# Stages that score models on tinyeval: the final evaluations (the report reads only their
# metrics). `lintseq_eval` is the LintSeq experiment's final evaluation; it chooses nothing.
SCORE_ON_TINYEVAL = {"evaluate", "evaluate_dpo", "lintseq_eval"}
# Stages that read tinyeval only to keep it out of their data (decontamination and the
# disjointness checks): they never score a model on it.
CHECK_AGAINST_TINYEVAL = {"base_model", "dedup", "synth", "sample"}
# Stages that score models while training or choosing: on tinydev, the dev set.
SCORE_ON_TINYDEV = {"base_model", "base_model_eval", "dpo", "dpo_shuffled"}


def _resolved_deps(spec: dict) -> list[str]:
    """A dvc.yaml stage's deps with its `vars` filled in (foreach items left as they are)."""
    import re

    node = spec.get("do", spec)
    values: dict[str, str] = {}
    for block in (spec.get("vars") or []) + (node.get("vars") or []):
        values.update({k: str(v) for k, v in block.items()})
    return [
        re.sub(r"\$\{([\w.]+)\}", lambda m: values.get(m[1], m[0]), str(dep))
        for dep in node.get("deps") or []
    ]


def _reads(deps: list[str], path: str) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def test_only_the_final_evaluations_score_models_on_tinyeval_and_training_scores_tinydev():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = {name: _resolved_deps(spec) for name, spec in stages.items()}
    readers = {name for name, d in deps.items() if _reads(d, "data/seed/tinyeval.jsonl")}
    assert readers == SCORE_ON_TINYEVAL | CHECK_AGAINST_TINYEVAL, sorted(readers)
    for name in SCORE_ON_TINYDEV:
        assert _reads(deps[name], "data/seed/tinydev.jsonl"), name
    for name in SCORE_ON_TINYDEV - CHECK_AGAINST_TINYEVAL:
        assert not _reads(deps[name], "data/seed/tinyeval.jsonl"), name
    # The report reads metrics only; the curriculum/shuffled verdict reads evaluate_dpo's out.
    assert not any(d.startswith("data/seed") for d in deps["report"])
    assert "data/evaluate_dpo" in deps["dpo_compare"]
    assert "data/evaluate" not in deps["dpo_compare"]


DPO_STAGES = {"sample", "score", "pairs", "curriculum", "dpo", "dpo_shuffled"}


def _upstream(stage_name: str) -> set[str]:
    """The stages `dvc repro <stage>` (and `dvc exp run <stage>`) would run, from DVC's graph."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(ROOT), uninitialized=True) as repo:
        graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
        (target,) = [s for s in graph.nodes if s.name == stage_name]
        return {s.name.split("@")[0] for s in nx.descendants(graph, target)}


def test_the_k_sweep_target_evaluate_runs_no_dpo_stage_and_evaluate_dpo_scores_them():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = {name: _resolved_deps(spec) for name, spec in stages.items()}
    assert not [d for d in deps["evaluate"] if d.startswith("models/dpo")], deps["evaluate"]
    # `dvc exp run -S k=10 evaluate`: neither sampling nor any DPO training upstream.
    assert not _upstream("evaluate") & DPO_STAGES, sorted(_upstream("evaluate"))
    assert {"cluster", "sft", "sft_baseline", "base_model"} <= _upstream("evaluate")
    # The DPO models are scored by evaluate_dpo, with the same script and params...
    dpo_models = {f"models/dpo/stage_{n}" for n in range(1, 5)} | {"models/dpo_shuffled"}
    assert dpo_models <= set(deps["evaluate_dpo"])
    assert _upstream("evaluate_dpo") >= DPO_STAGES
    assert "evaluate_dpo" in _upstream("dpo_compare")
    # ...but for the router's fallback margin, which only the routed model reads.
    routed_only = ["specialists.fallback_margin"]
    assert stages["evaluate_dpo"]["params"] == [
        p for p in stages["evaluate"]["params"] if p not in routed_only
    ]
    assert stages["evaluate_dpo"]["cmd"].startswith("python stages/evaluate.py ")

    def scored(name: str) -> set[str]:
        return set(re.findall(r"--model (\w+)=", stages[name]["cmd"]))

    assert scored("evaluate") == {"base", "k1", "routed"}
    assert scored("evaluate_dpo") == {f"dpo_stage_{n}" for n in range(1, 5)} | {"dpo_shuffled"}


def _params_naming(value, name: str, where: str = "") -> list[str]:
    """The params keys (dotted) whose value is or holds the string `name`."""
    if isinstance(value, dict):
        return [
            key
            for k, v in value.items()
            for key in _params_naming(v, name, f"{where}.{k}" if where else str(k))
        ]
    if isinstance(value, list | tuple):
        return [where] if name in value else []
    return [where] if value == name else []


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.stem)
def test_no_profile_chooses_on_a_final_benchmark(path):
    import yaml

    from codealign.params.evaluation import DEV_BENCHMARKS, FINAL_BENCHMARKS

    raw = yaml.safe_load(path.read_text())
    params = load_params(path)
    assert set(params["dpo"].eval_benchmarks) <= set(DEV_BENCHMARKS), path
    for final in FINAL_BENCHMARKS:
        keys = set(_params_naming(raw, final))
        # Scored by the final evaluations; decontaminated against; a dataset reference;
        # the paper pool's MBPP+ problems (MBPP train and prompt ids, held out of eval
        # and dev by construction: codealign/curation/pool.py).
        allowed = {"eval.benchmarks", "lintseq_eval.benchmark", "dedup.eval_sets"}
        allowed |= {"dataset_metrics.references", "data.pool_sources"}
        assert keys <= allowed, (path, final, keys)
    if params["data"].source == "real":
        assert list(params["dpo"].eval_benchmarks) == ["mbpp_validation"]
    else:
        assert list(params["dpo"].eval_benchmarks) == ["tinydev"]


def test_dpo_evaluations_on_a_final_benchmark_are_refused_in_one_line():
    import yaml

    from codealign.errors import CodealignError
    from codealign.params import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["dpo"]["eval_benchmarks"] = ["tinydev", "tinyeval"]
    with pytest.raises(CodealignError) as info:
        parse_params(raw, "params.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("dpo.eval_benchmarks: 'tinyeval' is a final benchmark")


def test_mbpp_validation_is_the_real_dev_set_and_seeds_nothing():
    from codealign.curation import datasets
    from codealign.evaluation.evaluate import load_benchmark

    raw = ROOT / "data" / "raw"
    dev = load_benchmark("mbpp_validation", ROOT / "data" / "seed", raw)
    ids = {r["task_id"] for r in dev.records}
    assert ids == set(range(511, 601)) and dev.full_program
    s1, s2, _ = datasets.real_seed_sets(raw)
    seeded = {int(r["id"].split("/")[1]) for r in s1 + s2}
    assert seeded and not seeded & ids
    test_ids = {r["task_id"] for r in load_benchmark("mbpp", ROOT / "data" / "seed", raw).records}
    assert not test_ids & ids
