"""Composed tiny-world programs for LintSeq (lintseq.compose): valid, tested, held out,
longer in edits; the stage's edit-count report; the default left as it was."""

import ast
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage, stage_module

from codealign.curation.dedup import ast_keys
from codealign.edits.distribution import summary
from codealign.edits.lintseq import build_split, decode_target, render_target
from codealign.execution import Limits, Sandbox
from codealign.params.edits import LintseqParams
from codealign.problems import problem_from_record
from codealign.tinyworld.composed import Composer, compose_sets
from codealign.tinyworld.templates import TEMPLATES
from codealign.tinyworld.world import build_world

WORLD_SEED = 0


@pytest.fixture(scope="module")
def chain_sets():
    return compose_sets(WORLD_SEED, 0, 3, 60, 6, 20)


@pytest.fixture(scope="module")
def parallel_sets():
    return compose_sets(WORLD_SEED, 0, 4, 60, 6, 20, "parallel")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2, limits=Limits(timeout=5.0)) as box:
        yield box


def score(box, tasks, programs):
    problems = {t.task_id: problem_from_record(t.to_problem(), t.task_id) for t in tasks}
    samples = [
        {"task_id": t.task_id, "completion_id": 0, "completion": program}
        for t, program in zip(tasks, programs, strict=True)
    ]
    return box.score(problems, samples, full_program=True)


@pytest.mark.parametrize("which", ["chain_sets", "parallel_sets"])
def test_composed_programs_are_python_that_pass_their_tests_in_the_sandbox(which, request, sandbox):
    sets = request.getfixturevalue(which)
    tasks = sets.train + sets.validation + sets.eval
    assert len(sets.train) == 60 and len(sets.validation) == 6 and len(sets.eval) == 20
    for task in tasks:
        tree = ast.parse(task.code)
        (function,) = tree.body
        assert len(function.body) >= 4  # docstring and at least three statements
        assert len(task.tests) >= 3
    verdicts = score(sandbox, tasks, [t.code for t in tasks])
    assert all(v["passed"] for v in verdicts), [v for v in verdicts if not v["passed"]][:2]
    # The tests can fail: the same programs returning None do.
    broken = [t.code.replace("return ", "return None and ") for t in tasks]
    assert not any(v["passed"] for v in score(sandbox, tasks, broken))


def test_programs_rebuilt_from_their_edit_sequences_pass_in_the_sandbox(parallel_sets, sandbox):
    tasks = parallel_sets.eval
    built = build_split([t.to_sft("c") for t in tasks], LintseqParams(samples=1), 3, progress=False)
    programs = [decode_target(render_target(r["edits"])).program for r in built.records]
    assert programs == [t.code for t in tasks]
    assert all(v["passed"] for v in score(sandbox, tasks, programs))


def test_eval_tasks_have_no_twin_on_the_training_side(chain_sets, parallel_sets):
    for sets in (chain_sets, parallel_sets):
        trained = sets.train + sets.validation
        trained_ast = {k for t in trained for k in ast_keys(t.code)}
        for task in sets.eval:
            assert not ast_keys(task.code) & trained_ast, task.code
            assert task.function not in {t.function for t in trained}
            assert task.prompt not in {t.prompt for t in trained}
        # Every part of an eval task is a tinyeval-side function, of a training program a
        # train-side one.
        composer = Composer(WORLD_SEED, 2)
        by_name = {t.name: t for t in TEMPLATES}
        for tasks, side in ((sets.eval, "eval"), (trained, "train")):
            for task in tasks:
                for part in task.semantic.split(" + "):
                    name, _, constants = part.partition("|")
                    values = dict(kv.split("=", 1) for kv in constants.split(",") if kv)
                    parsed = {k: ast.literal_eval(v) for k, v in values.items()}
                    assert composer.side(by_name[name], parsed) == side, (task.task_id, part)


def test_same_seed_same_programs_and_another_seed_others():
    first = compose_sets(WORLD_SEED, 5, 3, 10, 0, 5)
    again = compose_sets(WORLD_SEED, 5, 3, 10, 0, 5)
    other = compose_sets(WORLD_SEED, 6, 3, 10, 0, 5)
    assert [t.code for t in first.train] == [t.code for t in again.train]
    assert [t.tests for t in first.eval] == [t.tests for t in again.eval]
    assert [t.code for t in first.train] != [t.code for t in other.train]


def mean_edits(tasks, seed=0):
    built = build_split([t.to_sft("c") for t in tasks], LintseqParams(), seed, progress=False)
    return built.metrics["mean_edits_per_sequence"]


def test_composed_programs_have_more_edits_than_single_templates_on_the_same_seed():
    world = build_world(WORLD_SEED, 80, 1, 1)
    single = mean_edits(world.train[:80])
    chain = mean_edits(compose_sets(WORLD_SEED, 0, 3, 80, 0, 1).train)
    parallel = mean_edits(compose_sets(WORLD_SEED, 0, 4, 80, 0, 1, "parallel").train)
    assert single < chain < parallel
    assert parallel > single + 1


def test_summary_of_an_edit_count_histogram():
    assert summary({1: 2, 2: 5, 4: 3}) == {
        "histogram": {"1": 2, "2": 5, "3": 0, "4": 3},
        "sequences": 10,
        "mean": 2.4,
        "median": 2.0,
        "p90": 4.0,
    }
    assert summary({})["mean"] is None


# ---------------------------------------------------------------------------- the stage


@pytest.fixture
def stage_dir(tmp_path):
    world = build_world(WORLD_SEED, 40, 1, 1)
    records = [t.to_sft("s1") for t in world.train]
    for name, part in (("train", records[:36]), ("validation", records[36:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return tmp_path


def run_stage(tmp_path, lintseq):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"seed": WORLD_SEED, "k": 1, "lintseq": lintseq})
    )
    result = CliRunner().invoke(
        stage("lintseq"),
        [
            *("--params", str(tmp_path / "params.yaml")),
            *("--train", str(tmp_path / "train.jsonl")),
            *("--validation", str(tmp_path / "validation.jsonl")),
            *("--out", str(tmp_path / "lintseq")),
            *("--metrics", str(tmp_path / "metrics.json")),
            *("--plot", str(tmp_path / "plots" / "edits.png")),
        ],
    )
    metrics = (tmp_path / "metrics.json").exists() and json.loads(
        (tmp_path / "metrics.json").read_text()
    )
    return result, metrics


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_default_stage_rewrites_the_curated_programs_as_before(stage_dir):
    result, metrics = run_stage(stage_dir, {})
    assert result.exit_code == 0, result.output
    out = stage_dir / "lintseq"
    assert not (out / "tasks.jsonl").exists()
    curated = read(stage_dir / "train.jsonl")
    expected = build_split(curated, LintseqParams(), WORLD_SEED, progress=False)
    assert read(out / "train.jsonl") == expected.records
    assert metrics["programs_from"] == "curated"
    assert metrics["mean_edits_per_sequence"] == metrics["edits_per_sequence"]["mean"]
    histogram = metrics["edits_per_sequence"]["histogram"]
    assert sum(histogram.values()) == metrics["sequences"]
    assert (stage_dir / "plots" / "edits.png").read_bytes().startswith(b"\x89PNG")


def test_compose_writes_composed_programs_tasks_and_their_edit_counts(stage_dir):
    _, before = run_stage(stage_dir, {})
    result, after = run_stage(stage_dir, {"compose": 4, "compose_shape": "parallel",
                                          "compose_tasks": 7})  # fmt: skip
    assert result.exit_code == 0, result.output
    out = stage_dir / "lintseq"
    train, tasks = read(out / "train.jsonl"), read(out / "tasks.jsonl")
    assert {r["id"] for r in train} == {f"lintseq_composed_train/{i}" for i in range(36)}
    assert len(tasks) == 7 and all(t["task_id"].startswith("lintseq_composed_eval/") for t in tasks)
    assert after["programs_from"]["compose"] == 4 and after["programs"] == before["programs"]
    assert after["mean_edits_per_sequence"] > before["mean_edits_per_sequence"] + 1
    assert max(map(int, after["edits_per_sequence"]["histogram"])) >= 5


@pytest.mark.parametrize("value", [0, -2])
def test_compose_below_one_is_refused_in_one_line_and_writes_nothing(stage_dir, value):
    result, metrics = run_stage(stage_dir, {"compose": value})
    assert result.exit_code != 0
    assert result.output == f"error: lintseq.compose must be an integer >= 1, got {value}\n"
    assert metrics is False and not (stage_dir / "lintseq").exists()


def test_an_unknown_shape_is_refused_in_one_line(stage_dir):
    result, _ = run_stage(stage_dir, {"compose": 3, "compose_shape": "tree"})
    assert result.exit_code != 0 and result.output.count("\n") == 1
    assert "lintseq.compose_shape" in result.output and "'tree'" in result.output


def test_lintseq_eval_reads_the_composed_tasks_in_place_of_its_benchmark(tmp_path):
    composed_tasks = stage_module("lintseq_eval").composed_tasks
    assert composed_tasks(tmp_path, 0) is None
    sets = compose_sets(WORLD_SEED, 0, 3, 1, 0, 4)
    problems = [t.to_problem() for t in sets.eval]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    benchmark = composed_tasks(tmp_path, 3)
    assert benchmark.name == "lintseq_composed" and benchmark.records == problems[:3]
    assert benchmark.prompts == [p["prompt"] for p in problems[:3]]
    assert not benchmark.full_program


# ---------------------------------------------------------------------------- seeds, findings


def _seed_listing() -> list:
    from test_lintseq_eval import _lintseq_metrics, _seed_rev

    def experiment(rev, name, seed, pass1, params):
        metrics = _lintseq_metrics(seed, pass1)
        return {"executor": None, "name": name,
                "revs": [_seed_rev(rev * 40, name, f"2026-01-01T0{seed}:00:0{len(params)}",
                                   metrics, params=params)]}  # fmt: skip

    composed = {"lintseq": {"compose": 4, "compose_shape": "parallel"}}
    plain = {"lintseq": {"compose": 1, "compose_shape": "chain"}}
    baseline = _seed_rev("e" * 40, "main", "2026-01-01T08:00:00", None, params=plain)
    baseline["experiments"] = [
        experiment("1", "plain1", 1, 0.30, plain),
        experiment("2", "comp0", 0, 0.55, composed),
        experiment("3", "comp1", 1, 0.56, composed),
        # Written before the key existed: the curated arm.
        experiment("4", "old2", 2, 0.32, {}),
    ]
    return [baseline]


def _collect(tmp_path, *extra):
    from codealign.sweeps.lintseq_seeds import lintseq_seeds_command

    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(_seed_listing()))
    out = tmp_path / "out" / "seeds.json"
    argv = ["--from-json", str(path), "--out", str(out), "--plot", str(tmp_path / "s.png")]
    argv += ["--runs-dir", str(tmp_path / "runs"), *extra]
    result = CliRunner().invoke(lintseq_seeds_command, argv)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result


def test_the_seed_collector_keeps_the_composed_arm_apart(tmp_path):
    plain, result = _collect(tmp_path)
    assert plain["seeds"] == [1, 2]
    assert plain["by_target"]["edits"]["pass@1"]["values"] == [0.30, 0.32]
    assert "2 of another lintseq.compose arm" in result.stderr
    composed, _ = _collect(tmp_path, "--compose", "4", "--compose-shape", "parallel")
    assert composed["seeds"] == [0, 1]
    assert composed["by_target"]["edits"]["pass@1"]["values"] == [0.55, 0.56]
    records = [json.loads(Path(p).read_text()) for p in composed["records"]]
    assert {r["params"]["lintseq"]["compose"] for r in records} == {4}


def _lintseq_record(seed: int, compose: int | None, edits: float, code: float, mean_edits):
    from codealign.sweeps.records import build_record

    params = {"seed": 0, "k": 1, "train_seed": seed}
    if compose is not None:
        params["lintseq"] = {"compose": compose, "compose_shape": "parallel"}
    tasks = {f"t{i}": [round(edits * 10), 10] for i in range(20)}
    code_tasks = {f"t{i}": [round(code * 10), 10] for i in range(20)}
    metrics = {"edits": {"pass@1": edits}, "code": {"pass@1": code}}
    if mean_edits is not None:
        metrics["edits_per_sequence"] = {"mean": mean_edits}
    return build_record(
        sweep="lintseq_seeds",
        run=f"c{compose}-train_seed={seed}",
        command="codealign lintseq-seeds",
        commit="a" * 40,
        dirty=False,
        experiment={"rev": f"{seed}" * 40, "name": None, "timestamp": None},
        profile="full",
        params=params,
        swept={"train_seed": seed},
        varies=["train_seed"],
        metrics=metrics,
        tasks={"edits": tasks, "code": code_tasks},
        tasks_missing={},
    )


def test_findings_measure_each_lintseq_arm_on_its_own_records_with_a_computed_caveat(tmp_path):
    from test_findings import _findings

    records = [_lintseq_record(s, None, 0.5, 0.6, None) for s in range(3)]
    records += [_lintseq_record(s, 4, 0.8, 0.6, 3.5 + s / 10) for s in range(3)]
    rows, _ = _findings(tmp_path, records)
    plain, composed = rows["lintseq-pass-at-large-k"], rows["lintseq-pass-at-large-k-composed"]
    assert plain["verdict"] == "contradicts" and composed["verdict"] == "supports"
    assert "lintseq.compose 1" in plain["note"] and "1.74" not in plain["note"]
    assert "average 3.50-3.70 edits, over 3 runs" in composed["note"]
    assert composed["comparisons"][0]["seed_values"] == [{"train_seed": s} for s in range(3)]
    short = [_lintseq_record(s, 1, 0.5, 0.6, 1.7) for s in range(3)]
    rows, _ = _findings(tmp_path / "short", short)
    assert "average 1.70 edits (under 2" in rows["lintseq-pass-at-large-k"]["note"]
