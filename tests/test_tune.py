"""`codealign tune`: one param chosen on the dev split from a grid of DVC experiments."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from codealign.sweeps.tune import choose, tune_command

METRIC = "metrics/base_model.json"


def _rev(rev: str, steps: int, seed, score: float | None, other: float = 0.003) -> dict:
    metrics = {} if score is None else {METRIC: {"data": {"pass@1_greedy": score}}}
    params = {"seed": 0, "base_model": {"steps": steps, "seed": seed, "learning_rate": other}}
    return {
        "rev": rev,
        "name": None if rev == "workspace" else f"exp-{rev[:4]}",
        "data": {
            "rev": rev,
            "timestamp": None if rev == "workspace" else f"2026-12-08T00:{int(rev[:2], 16):02d}:00",
            "params": {"params.yaml": {"data": params}},
            "metrics": metrics,
        },
        "error": None,
        "experiments": None,
    }


def _dump(grid: dict[tuple[int, int], float], extra: list[dict] = ()) -> list:
    """The workspace at steps 600 seed null (the master seed 0), and one experiment per
    (steps, seed) of `grid` besides it."""
    experiments = [
        {"executor": None, "revs": [_rev(f"{i + 16:02x}" + "a" * 38, steps, seed, score)]}
        for i, ((steps, seed), score) in enumerate(sorted(grid.items()))
        if (steps, seed) != (600, 0)
    ]
    experiments += [{"executor": None, "revs": [rev]} for rev in extra]
    workspace = _rev("workspace", 600, None, grid[(600, 0)])
    baseline = _rev("f" * 40, 600, None, grid[(600, 0)])
    baseline["experiments"] = experiments
    return [workspace, baseline]


def _run(tmp_path: Path, dump: list, *args: str):
    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(dump))
    out = tmp_path / "tune.json"
    argv = ["base_model.steps", "--metric", f"{METRIC}:pass@1_greedy"]
    argv += ["--seed-key", "base_model.seed", "--from-json", str(path), "--out", str(out)]
    argv += ["--runs-dir", str(tmp_path / "runs"), *args]
    return CliRunner().invoke(tune_command, argv), out


def test_a_value_that_beats_the_current_one_on_every_seed_is_proposed(tmp_path):
    grid = {(300, s): 0.30 + s / 100 for s in range(3)}
    grid |= {(600, s): 0.50 + s / 100 for s in range(3)}
    grid |= {(1200, s): 0.60 + s / 100 + (0.02 if s == 1 else 0) for s in range(3)}
    result, out = _run(tmp_path, _dump(grid))
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["current"] == 600 and summary["chosen"] == 1200
    by_value = {entry["value"]: entry for entry in summary["values"]}
    assert by_value[600]["seeds"] == [0, 1, 2]  # the workspace counts as seed 0
    assert abs(by_value[1200]["against_current"]["mean"] - (0.10 + 0.02 / 3)) < 1e-9
    assert by_value[300]["against_current"]["high"] < 0
    assert summary["decision"].startswith("change to 1200")
    assert "paired seeds" not in summary["decision"]  # three seeds: no caveat
    assert summary["provenance"]["command"].startswith("codealign tune base_model.steps")
    assert len(list((tmp_path / "runs").glob("*.json"))) == 9


def test_noise_keeps_the_current_value(tmp_path):
    grid = {(600, s): 0.50 for s in range(3)}
    grid |= {(1200, 0): 0.60, (1200, 1): 0.45, (1200, 2): 0.52}
    result, out = _run(tmp_path, _dump(grid))
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["chosen"] == 600 and summary["decision"].startswith("keep 600")
    assert "keep 600" in result.stdout


def test_one_seed_never_changes_the_value():
    points = {600: {0: 0.5}, 1200: {0: 0.9}}
    assert choose(points, 600, higher_is_better=True)["chosen"] == 600


def test_lower_is_better_for_a_loss():
    points = {600: {0: 1.0, 1: 1.1, 2: 1.05}, 1200: {0: 0.8, 1: 0.85, 2: 0.82}}
    assert choose(points, 600, higher_is_better=False)["chosen"] == 1200
    assert choose(points, 600, higher_is_better=True)["chosen"] == 600


def test_runs_that_changed_another_param_are_left_out(tmp_path):
    grid = {(600, s): 0.50 + s / 100 for s in range(3)} | {(1200, 1): 0.40}
    other = _rev("ee" + "b" * 38, 1200, 0, 0.99, other=0.01)  # another learning rate
    result, out = _run(tmp_path, _dump(grid, [other]))
    assert result.exit_code == 0, result.output
    values = {e["value"]: e for e in json.loads(out.read_text())["values"]}
    assert values[1200]["seeds"] == [1] and values[1200]["mean"] == 0.40
    assert "other params than the workspace (base_model.learning_rate)" in result.stderr


def test_bad_metric_spec_and_unknown_param_are_one_line(tmp_path):
    grid = {(600, 0): 0.5}
    path = tmp_path / "exp_show.json"
    path.write_text(json.dumps(_dump(grid)))
    from codealign.cli import main

    bad = CliRunner().invoke(main, ["tune", "base_model.steps", "--metric", "pass@1",
                                    "--from-json", str(path)])  # fmt: skip
    assert bad.exit_code == 2 and "expected FILE.json:KEY" in bad.output
    argv = ["tune", "base_model.stepz", "--metric", f"{METRIC}:pass@1_greedy"]
    unknown = CliRunner().invoke(main, [*argv, "--from-json", str(path)])
    assert unknown.exit_code == 2 and "base_model.stepz: not a param" in unknown.output
    assert not (tmp_path / "results").exists()


def test_two_seeds_propose_with_a_caveat():
    points = {600: {0: 0.78, 1: 0.92}, 1200: {0: 0.84, 1: 0.94}}
    decided = choose(points, 600, higher_is_better=True)
    assert decided["chosen"] == 1200
    assert "only 2 paired seeds" in decided["decision"]
