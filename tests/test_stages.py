"""Stage scripts as a user runs them: CliRunner, bad params, no half-written outs."""

import json
from pathlib import Path

import yaml
from click.testing import CliRunner
from stage_scripts import stage

ROOT = Path(__file__).resolve().parents[1]


def smoke_params(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_seed_stage_writes_every_seed_file(tmp_path):
    out = tmp_path / "seed"
    metrics = tmp_path / "seed.json"
    result = CliRunner().invoke(
        stage("seed"),
        ["--params", str(smoke_params(tmp_path)), "--out", str(out), "--metrics", str(metrics)],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "train.jsonl",
            "s1.jsonl",
            "s2.jsonl",
            "keywords.json",
            "tinyeval.jsonl",
            "tinydev.jsonl",
            "pool.jsonl",
        ]
    )
    counts = json.loads(metrics.read_text())["sets"]
    for name in ("tinyeval", "tinydev"):
        lines = (out / f"{name}.jsonl").read_text().splitlines()
        assert counts[name] == {"tasks": len(lines), "functions": len(lines)}
    s1 = [json.loads(line) for line in (out / "s1.jsonl").read_text().splitlines()]
    assert len(s1) == 40
    assert {r["difficulty"] for r in s1} == {"easy", "medium", "hard"}
    assert set(s1[0]) >= {"id", "question", "code", "keywords", "source"}
    s2 = [json.loads(line) for line in (out / "s2.jsonl").read_text().splitlines()]
    assert len(s2) == 80 - 80 // 4  # the shortest quartile of titles is dropped
    vocabulary = json.loads((out / "keywords.json").read_text())
    assert vocabulary == sorted({k for r in s2 for k in r["keywords"]})


def test_real_seed_stage_builds_from_vendored_data(tmp_path):
    out = tmp_path / "seed"
    real = {"data.source": "real", "sample.add_reference": False}  # smoke's knob: tiny world only
    params = smoke_params(tmp_path, **real, **{"data.raw_dir": str(ROOT / "data/raw")})
    result = CliRunner().invoke(
        stage("seed"),
        ["--params", str(params), "--out", str(out), "--metrics", str(tmp_path / "m.json")],
    )
    assert result.exit_code == 0, result.output
    pool = [json.loads(line) for line in (out / "pool.jsonl").read_text().splitlines()]
    assert len(pool) == 233  # MBPP+ and APPS held out of SFT, eval and dev (tests/test_pool.py)


def test_bad_params_give_one_line_and_no_outs(tmp_path):
    out = tmp_path / "seed"
    params = smoke_params(tmp_path, **{"data.n_eval": 0})
    result = CliRunner().invoke(
        stage("seed"),
        ["--params", str(params), "--out", str(out), "--metrics", str(tmp_path / "m.json")],
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: data.n_eval must be an integer >= 1, got 0"
    assert not out.exists()


def test_missing_raw_dir_is_named(tmp_path):
    params = smoke_params(
        tmp_path,
        **{
            "data.source": "real",
            "sample.add_reference": False,
            "data.raw_dir": str(tmp_path / "x"),
        },
    )
    result = CliRunner().invoke(
        stage("seed"),
        [
            "--params",
            str(params),
            "--out",
            str(tmp_path / "seed"),
            "--metrics",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert str(tmp_path / "x") in result.output and "not found" in result.output


def test_base_model_with_missing_seed_names_the_file(tmp_path):
    result = CliRunner().invoke(
        stage("base_model"),
        [
            "--params",
            str(smoke_params(tmp_path)),
            "--seed-dir",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "model"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--live-dir",
            str(tmp_path / "live"),
        ],
    )
    assert result.exit_code == 2
    assert "train.jsonl: file not found" in result.output
    assert not (tmp_path / "model").exists() and not (tmp_path / "m.json").exists()


def test_every_stage_lists_every_codealign_file_its_script_can_reach():
    """DVC reruns a stage only for what its `deps:` list, so a codealign module (or package
    data file) the stage script can reach, through any chain of imports, function-level
    ones included, and dvc.yaml leaves out would let a stale out pass as fresh."""
    from codealign.stage_deps import LOCK_FILE, covers, read_stages, stage_files

    _, stages = read_stages(ROOT / "dvc.yaml")
    assert len(stages) == len(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    missing = []
    for spec in stages:
        files = stage_files(spec.script)
        assert {spec.script, LOCK_FILE, "codealign/__init__.py"} <= files
        missing += [f"{spec.name}: {f}" for f in sorted(files) if not covers(spec.deps, f)]
    assert not missing, missing
