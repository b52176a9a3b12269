"""`codealign ksweep`: a K sweep read from `dvc exp show --json`, aggregated and plotted.

tests/fixtures/exp_show.json is real DVC 3.67 output from a throwaway repo whose one
stage writes an evaluate.json-shaped file from a table on (k, seed): k in {1, 5, 10}
x seed in {0, 1, 2}, plus a (5, 0) run with offset 0.5 (another configuration, left
out), a failed k=7 run (DVC shows it with the baseline's metrics), one
experiment re-shaped as queued, and the workspace and baseline commit, which repeat
(10, 2) and (5, 0).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from codealign.sweeps.experiments import ExperimentRow, ksweep_command, same_configuration

FIXTURE = Path(__file__).parent / "fixtures" / "exp_show.json"

# The fixture's routed scores, (k, seed) -> (pass@1, pass@10_t0.8); k1 is 0.01 above K = 1.
PASS1 = {1: [0.10, 0.20, 0.30], 5: [0.30, 0.40, 0.20], 10: [0.25, 0.35, 0.45]}
PASS10 = {1: [0.50, 0.60, 0.70], 5: [0.60, 0.80, 0.70], 10: [0.90, 0.70, 0.80]}


def _dump() -> list:
    return json.loads(FIXTURE.read_text())


def _revs(dump: list):
    """Every rev entry: workspace, baseline, experiments."""
    for row in dump:
        yield row
        for experiment in row["experiments"] or []:
            yield from experiment["revs"]


def _evaluate(rev: dict) -> dict | None:
    metrics = rev["data"]["metrics"].get("metrics/evaluate.json")
    return metrics["data"] if metrics else None


def _run(tmp_path: Path, dump: list | Path, *args: str):
    if isinstance(dump, list):
        path = tmp_path / "exp_show.json"
        path.write_text(json.dumps(dump))
    else:
        path = dump
    out, plot = tmp_path / "out" / "ksweep.json", tmp_path / "out" / "ksweep.png"
    argv = ["--from-json", str(path), "--out", str(out), "--plot", str(plot)]
    argv += ["--runs-dir", str(tmp_path / "runs"), *args]
    result = CliRunner().invoke(ksweep_command, argv)
    return result, out, plot


def _aggregate(path: Path) -> dict:
    """A summary without what names its paths and command: its provenance, and its
    records' folder (the record file names stay)."""
    summary = json.loads(path.read_text())
    summary.pop("provenance")
    summary["records"] = [Path(p).name for p in summary["records"]]
    return summary


def _assert_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG"
        assert image.size[0] > 300 and image.size[1] > 200


def test_fixture_aggregates_per_k(tmp_path):
    result, out, plot = _run(tmp_path, FIXTURE)

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["benchmark"] == "tinyeval"
    assert summary["metrics"] == ["pass@1", "pass@10_t0.8"]
    assert [point["k"] for point in summary["by_k"]] == [1, 5, 10]
    for point in summary["by_k"]:
        k = point["k"]
        assert point["seeds"] == [0, 1, 2]
        assert point["models"] == ["routed"]
        assert point["effective_k"] == [k]
        for metric, table in (("pass@1", PASS1), ("pass@10_t0.8", PASS10)):
            stats = point[metric]
            assert stats["n"] == 3
            assert stats["values"] == table[k]
            assert stats["min"] == min(table[k])
            assert stats["max"] == max(table[k])
            # Every K's three scores are spaced 0.1 apart: mean the middle one, std 0.1.
            assert stats["mean"] == pytest.approx(sorted(table[k])[1])
            assert stats["std"] == pytest.approx(0.1)
    assert len(summary["runs"]) == 9
    _assert_png(plot)


def test_newest_run_of_a_k_seed_wins_and_unfinished_ones_are_skipped(tmp_path):
    result, out, _ = _run(tmp_path, FIXTURE)

    runs = {(run["k"], run["seed"]): run for run in json.loads(out.read_text())["runs"]}
    # (5, 0) ran three times: baseline commit, a run with another offset (other params:
    # not a point of this sweep), then loved-lien.
    assert runs[(5, 0)]["name"] == "loved-lien"
    assert runs[(5, 0)]["pass@1"] == 0.3
    # The workspace repeats goofy-airt's (10, 2) and has no timestamp: the experiment wins.
    assert runs[(10, 2)]["name"] == "goofy-airt"
    # The failed k=7 run carries the baseline's metrics; it must not become a K = 7 point.
    assert 7 not in {k for k, _ in runs}
    assert "2 older repeats of a (k, seed)" in result.stderr
    assert "1 with other params than the workspace (offset)" in result.stderr
    assert "1 failed" in result.stderr
    assert "1 queued" in result.stderr


def test_train_seed_is_the_seed_of_a_run_when_set(tmp_path):
    # A sweep on fixed data varies train_seed and leaves the master seed alone.
    dump = _dump()
    for rev in _revs(dump):
        params = rev["data"]["params"]["params.yaml"]["data"]
        params["train_seed"], params["seed"] = params["seed"], 0
    result, out, _ = _run(tmp_path, dump)

    assert result.exit_code == 0, result.output
    by_k = {point["k"]: point for point in json.loads(out.read_text())["by_k"]}
    assert by_k[5]["seeds"] == [0, 1, 2]
    assert by_k[10]["pass@1"]["values"] == PASS1[10]


def test_scores_sampled_at_another_train_seed_are_stale(tmp_path):
    # `dvc exp run -S train_seed=1 lintseq_eval` leaves evaluate.json as its baseline's,
    # which records train_seed 0: it must not become the newest (5, 1) point.
    dump = _dump()
    (tmp_path / "before").mkdir()
    before, _, _ = _run(tmp_path / "before", dump)
    assert before.exit_code == 0, before.output
    source = next(rev for rev in _revs(dump) if rev["name"] == "loved-lien")
    stale = copy.deepcopy(source)
    stale["rev"] = stale["data"]["rev"] = "f" * 40
    stale["name"] = "lintseq-only"
    stale["data"]["timestamp"] = "2099-01-01T00:00:00"
    stale["data"]["params"]["params.yaml"]["data"]["seed"] = 1
    for scores in _evaluate(stale)["tinyeval"]["models"].values():
        scores["train_seed"] = 0
    dump[1]["experiments"].append({"executor": None, "name": "lintseq-only", "revs": [stale]})

    result, out, _ = _run(tmp_path, dump)

    assert result.exit_code == 0, result.output
    runs = {(run["k"], run["seed"]): run for run in json.loads(out.read_text())["runs"]}
    assert "lintseq-only" not in {run["name"] for run in runs.values()}
    assert _aggregate(out) == _aggregate(tmp_path / "before" / "out" / "ksweep.json")
    assert "1 routed scores of another train_seed (stale metrics/evaluate.json)" in result.stderr


def test_runs_that_changed_other_params_are_left_out(tmp_path):
    # `-S base_model.code_share=0.5 evaluate` scores K = 5 on another base model: the
    # newest (5, 0) run, but not a point of this sweep.
    dump = _dump()
    for rev in _revs(dump):
        if _evaluate(rev):
            _evaluate(rev)["tinyeval"]["models"]["base"] = {"model_digest": "base-a"}
    (tmp_path / "before").mkdir()
    before, _, _ = _run(tmp_path / "before", dump)
    assert before.exit_code == 0, before.output
    other = copy.deepcopy(next(rev for rev in _revs(dump) if rev["name"] == "loved-lien"))
    other["rev"] = other["data"]["rev"] = "b" * 40
    other["name"] = "share-0.5"
    other["data"]["timestamp"] = "2099-01-01T00:00:00"
    other["data"]["params"]["params.yaml"]["data"]["base_model"] = {"code_share": 0.5}
    models = _evaluate(other)["tinyeval"]["models"]
    models["base"]["model_digest"] = "base-b"
    models["routed"]["pass@1"] = 0.99
    dump[1]["experiments"].append({"executor": None, "name": "share-0.5", "revs": [other]})

    result, out, _ = _run(tmp_path, dump)

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["base_model_digest"] == "base-a"
    assert "share-0.5" not in {run["name"] for run in summary["runs"]}
    assert _aggregate(out) == _aggregate(tmp_path / "before" / "out" / "ksweep.json")
    assert "1 with other params than the workspace (base_model.code_share)" in result.stderr


def test_a_param_added_later_as_null_is_the_same_configuration():
    def row(rev: str, params: dict) -> ExperimentRow:
        return ExperimentRow(rev=rev, name=None, timestamp=None, order=0, params=params,
                             metrics=None)  # fmt: skip

    workspace = row("workspace", {"k": 5, "base_model": {"code_share": 0.25, "seed": None}})
    older = row("a" * 40, {"k": 10, "base_model": {"code_share": 0.25}})
    other = row("b" * 40, {"k": 5, "base_model": {"code_share": 0.25, "seed": 1}})
    skipped: Counter = Counter()
    kept = same_configuration([workspace, older, other], ("k",), skipped)
    assert kept == [workspace, older]
    assert skipped == Counter({"with other params than the workspace (base_model.seed)": 1})


def test_console_shows_mean_and_range_per_k(tmp_path):
    result, _, _ = _run(tmp_path, FIXTURE)

    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["K", "seeds", "pass@1", "pass@10_t0.8"]
    assert lines[2].split("\t") == ["5", "3", "0.300 [0.200, 0.400]", "0.700 [0.600, 0.800]"]
    assert "wrote" in result.stderr and "ksweep.png" in result.stderr


def test_k1_model_stands_in_for_k_equal_1_when_no_k1_runs(tmp_path):
    dump = _dump()
    for row in dump:
        row["experiments"] = [
            experiment
            for experiment in row["experiments"] or []
            if experiment["revs"][0]["data"]["params"]["params.yaml"]["data"]["k"] != 1
        ]

    result, out, _ = _run(tmp_path, dump)

    assert result.exit_code == 0, result.output
    k1 = json.loads(out.read_text())["by_k"][0]
    assert k1["k"] == 1
    assert k1["models"] == ["k1"]
    assert k1["seeds"] == [0, 1, 2]
    assert k1["pass@1"]["values"] == [0.11, 0.21, 0.31]
    assert k1["pass@1"]["mean"] == pytest.approx(0.21)
    assert k1["pass@10_t0.8"]["min"] == 0.51
    assert k1["pass@10_t0.8"]["max"] == 0.71
    assert result.stdout.splitlines()[1].startswith("1 (k1)\t3\t")


def test_without_pass_at_10_only_pass_at_1_is_plotted(tmp_path):
    dump = _dump()
    for rev in _revs(dump):
        evaluate = _evaluate(rev)
        for model in (evaluate or {}).get("tinyeval", {}).get("models", {}).values():
            model.pop("pass@10_t0.8", None)

    result, out, plot = _run(tmp_path, dump)

    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["metrics"] == ["pass@1"]
    _assert_png(plot)


def test_dissolved_clusters_show_as_effective_k(tmp_path):
    dump = _dump()
    for rev in _revs(dump):
        if rev.get("name") == "naval-shah":  # k=5, seed=1
            _evaluate(rev)["tinyeval"]["models"]["routed"]["k"] = 4

    result, out, _ = _run(tmp_path, dump)

    assert result.exit_code == 0, result.output
    k5 = json.loads(out.read_text())["by_k"][1]
    assert k5["k"] == 5
    assert k5["effective_k"] == [4, 5]


def test_malformed_json_names_the_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('[{"rev": "workspace",\n  "data": }]\n')

    result, out, plot = _run(tmp_path, bad)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {bad}:2: invalid JSON")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not plot.exists()


def test_json_that_is_not_an_exp_show_listing_names_the_file(tmp_path):
    result, _, _ = _run(tmp_path, [{"rev": "workspace"}, 3])
    assert result.exit_code == 2
    assert "exp_show.json: expected the list of rows `dvc exp show --json` prints" in result.stderr


def test_missing_benchmark_names_it_and_the_ones_present(tmp_path):
    result, out, _ = _run(tmp_path, FIXTURE, "--benchmark", "humaneval")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: benchmark 'humaneval' is not in metrics/evaluate.json of any experiment "
        "(present: tinyeval)\n"
    )
    assert not out.exists()


def test_no_finished_experiments_with_metrics_is_one_clear_line(tmp_path):
    dump = _dump()
    for rev in _revs(dump):
        rev["data"]["metrics"] = {}

    result, out, plot = _run(tmp_path, dump)

    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith("error: ")
    assert "no finished experiments with metrics/evaluate.json found" in message
    assert "1 queued" in message
    assert not out.exists() and not plot.exists()


def test_missing_dump_file_is_named(tmp_path):
    result, _, _ = _run(tmp_path, tmp_path / "nope.json")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.json'}: file not found\n"


# A stage whose evaluate.json scores depend on k and seed, as the real one's do.
_STAGE = """\
import json, os
import yaml

params = yaml.safe_load(open("params.yaml"))
k, seed = params["k"], params["seed"]
def scores(k):
    return {"k": k, "pass@1": round(0.1 * k + 0.01 * seed, 4),
            "pass@10_t0.8": round(0.2 * k + 0.01 * seed, 4)}
os.makedirs("metrics/headline", exist_ok=True)
models = {"base": {"pass@1": 0.0}, "k1": scores(1), "routed": scores(k)}
# Per-task verdicts as the evaluate stage writes them: task i passes i of 10 samples at
# K = 1, and k + i of them routed (capped at 10).
for model, shift in (("routed", k), ("k1", 1)):
    for tag in ("pass1", "passk"):
        folder = f"data/evaluate/tinyeval/{model}"
        os.makedirs(folder, exist_ok=True)
        with open(f"{folder}/verdicts_{tag}.jsonl", "w") as f:
            for i in range(4):
                for j in range(10):
                    f.write(json.dumps({"task_id": f"t/{i}", "completion_id": j,
                                        "passed": j < min(10, i + shift - 1)}) + "\\n")
with open("metrics/evaluate.json", "w") as f:
    json.dump({"tinyeval": {"tasks": 4, "samples_per_task": 10, "models": models}}, f)
with open("metrics/headline/tinyeval.json", "w") as f:
    json.dump({"pass@1": {name: m["pass@1"] for name, m in models.items()}}, f)
"""

# As in the pipeline: the full metrics file is a plain out, DVC reads only the headline.
_DVC_YAML = """\
stages:
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py]
    params: [seed, k]
    outs:
      - data/evaluate
      - metrics/evaluate.json:
          cache: false
    metrics:
      - metrics/headline:
          cache: false
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_real_dvc_experiments(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    # The stage's `python` is the venv's, so it has yaml.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")

    def sh(*argv: str) -> None:
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)

    dvc = (sys.executable, "-m", "dvc")
    sh("git", "init", "-q")
    sh(*dvc, "init", "-q")
    (repo / "params.yaml").write_text("seed: 0\nk: 1\n")
    (repo / "evaluate.py").write_text(_STAGE)
    (repo / "dvc.yaml").write_text(_DVC_YAML)
    sh(*dvc, "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-q", "-m", "baseline k=1 seed=0")
    for k, seed in ((2, 0), (2, 1), (1, 1)):
        sh(*dvc, "exp", "run", "-q", "-S", f"k={k}", "-S", f"seed={seed}")

    out, plot = tmp_path / "ksweep.json", tmp_path / "ksweep.png"
    argv = ["--repo", str(repo), "--out", str(out), "--plot", str(plot)]
    argv += ["--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(ksweep_command, argv)

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    runs = {(run["k"], run["seed"]): run["pass@1"] for run in summary["runs"]}
    assert runs == {(1, 0): 0.1, (1, 1): 0.11, (2, 0): 0.2, (2, 1): 0.21}
    assert summary["metrics"] == ["pass@1", "pass@10_t0.8"]
    k2 = summary["by_k"][1]
    assert k2["pass@10_t0.8"]["mean"] == pytest.approx(0.405)
    # The workspace repeats the last run, (1, 1).
    assert "1 older repeats of a (k, seed)" in result.stderr
    _assert_png(plot)

    # One record per run counted, each with what a finding needs to pair and resample.
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*.json"))]
    assert len(records) == 4
    assert sorted(json.loads(out.read_text())["records"]) == sorted(
        str(tmp_path / "runs" / f"{r['run_id']}.json") for r in records
    )
    for record in records:
        k, seed = record["params"]["k"], record["params"]["seed"]
        assert record["swept"] == {"k": k, "train_seed": seed}
        assert record["seeds"]["seed"] == seed and record["seeds"]["train_seed"] is None
        assert record["varies"] == ["seed"]  # the toy params have no train_seed
        assert record["commit"] == head and record["dirty"] is False
        assert record["command"].startswith("codealign ksweep --repo ")
        assert record["metrics"]["models"]["routed"]["pass@1"] == round(0.1 * k + 0.01 * seed, 4)
        assert record["tasks_missing"] == {}
        routed = record["tasks"]["routed/pass1"]
        assert routed == {f"t/{i}": [min(10, max(0, i + k - 1)), 10] for i in range(4)}
        assert record["tasks"]["k1/passk"] == {f"t/{i}": [max(0, i), 10] for i in range(4)}
    assert json.loads(out.read_text())["provenance"]["commit"] == head

    # `codealign exps`: `dvc exp show` with the columns that matter, arguments passed on.
    codealign = Path(sys.executable).parent / "codealign"
    shown = subprocess.run(
        [str(codealign), "exps", "--csv"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.strip().splitlines()
    assert header.split(",") == [
        "Experiment",
        "Created",
        "pass@1.base",
        "pass@1.k1",
        "pass@1.routed",
        "seed",
        "k",
    ]  # not the deps' hashes
    assert len(rows) == 5  # the workspace, the baseline and three experiments


def test_each_run_counted_gets_a_record_and_the_summary_its_provenance(tmp_path):
    result, out, _ = _run(tmp_path, FIXTURE)

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["provenance"]["command"].startswith("codealign ksweep --out ")
    assert set(summary["provenance"]) == {"command", "commit", "dirty", "profile"}
    records = {Path(p).name: json.loads(Path(p).read_text()) for p in summary["records"]}
    assert len(records) == 9  # one per (k, seed) point counted
    points = {(r["swept"]["k"], r["swept"]["train_seed"]) for r in records.values()}
    assert points == {(k, s) for k in (1, 5, 10) for s in (0, 1, 2)}
    for record in records.values():
        k, seed = record["swept"]["k"], record["swept"]["train_seed"]
        assert record["params"]["k"] == k and record["seeds"]["seed"] == seed
        assert record["varies"] == ["seed"]  # the fixture sweeps the master seed
        routed = record["metrics"]["models"]["routed"]
        assert routed["pass@1"] == PASS1[k][seed]
        # A saved dump holds no verdict files: said per arm, not guessed.
        assert record["tasks"] == {}
        assert set(record["tasks_missing"]) == {
            "routed/pass1", "routed/passk", "k1/pass1", "k1/passk"
        }  # fmt: skip
        assert record["dirty"] is None  # no git to ask
        assert record["commit"] == record["experiment"]["rev"] or len(record["commit"]) == 40


def test_equal_steps_collects_the_runs_at_that_k_and_epochs(tmp_path):
    from codealign.sweeps.equal_steps import equal_steps_command

    dump = _dump()
    for rev in _revs(dump):
        params = rev["data"]["params"]["params.yaml"]["data"]
        if params.get("k") == 5 and rev["rev"] != "workspace":
            params["sft"] = {"epochs": 30}
    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(dump))
    out = tmp_path / "k5_equal_steps.json"
    argv = ["--k", "5", "--epochs", "30", "--from-json", str(path), "--out", str(out)]
    argv += ["--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(equal_steps_command, argv)

    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [run["train_seed"] for run in data["runs"]] == [0, 1, 2]
    assert [run["models"]["routed"]["pass@1"] for run in data["runs"]] == PASS1[5]
    assert all(run["sft_epochs"] == 30 for run in data["runs"])
    assert data["provenance"]["command"].startswith("codealign equal-steps --k 5 --epochs 30")
    assert len(list((tmp_path / "runs").glob("*.json"))) == 3

    argv[3] = "60"  # no run at 60 epochs: one line, nothing written
    again = tmp_path / "none.json"
    argv[argv.index("--out") + 1] = str(again)
    result = CliRunner().invoke(equal_steps_command, argv)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert not again.exists()


def test_a_run_names_the_profile_its_params_equal_but_for_the_swept_keys():
    import yaml

    from codealign.sweeps.records import profile_of

    root = Path(__file__).resolve().parents[1]
    full = yaml.safe_load((root / "params" / "full.yaml").read_text())
    assert profile_of(full, ("k", "train_seed"), root) == "full"
    full["k"], full["train_seed"] = 10, 2
    assert profile_of(full, ("k", "train_seed"), root) == "full"
    full["base_model"]["code_share"] = 0.123
    assert profile_of(full, ("k", "train_seed"), root) is None


def test_a_param_added_later_at_its_default_is_the_same_configuration():
    def row(rev: str, params: dict) -> ExperimentRow:
        return ExperimentRow(rev=rev, name=None, timestamp=None, order=0, params=params,
                             metrics=None)  # fmt: skip

    workspace = row("workspace", {"k": 5, "lintseq": {"compose": 1}})  # before=1
    older = row("a" * 40, {"k": 10, "lintseq": {}})  # before lintseq.compose existed
    composed = row("b" * 40, {"k": 5, "lintseq": {"compose": 4}})
    skipped: Counter = Counter()
    assert same_configuration([workspace, older, composed], ("k",), skipped) == [workspace, older]
    assert skipped == Counter({"with other params than the workspace (lintseq.compose)": 1})


def test_a_param_added_later_whose_default_changes_behaviour_splits_the_configuration():
    def row(rev: str, params: dict) -> ExperimentRow:
        return ExperimentRow(rev=rev, name=None, timestamp=None, order=0, params=params,
                             metrics=None)  # fmt: skip

    # heldout_instructions.share: 0.25 holds arguments out of the corpus; runs from before
    # the key existed held none out (before=0), so they are another configuration.
    workspace = row("workspace", {"k": 5, "heldout_instructions": {"share": 0.25}})
    older = row("a" * 40, {"k": 10})
    skipped: Counter = Counter()
    assert same_configuration([workspace, older], ("k",), skipped) == [workspace]
    no_split = row("workspace", {"k": 5, "heldout_instructions": {"share": 0}})
    assert same_configuration([no_split, older], ("k",), Counter()) == [no_split, older]
