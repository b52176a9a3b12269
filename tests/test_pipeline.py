"""The whole DAG on params/smoke.yaml in a scratch copy of the repository, through DVC."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    """A scratch clone of the working tree with the smoke profile installed, after `dvc repro`."""
    work = tmp_path_factory.mktemp("smoke") / "repo"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    shutil.copy2(ROOT / "params" / "smoke.yaml", work / "params.yaml")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "CODEALIGN_CACHE": str(work / ".cache"),
        "HF_HUB_OFFLINE": "1",
    }
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run([*git, "init", "-q"], work, env)
    run([*git, "add", "-A"], work, env)
    run([*git, "commit", "-qm", "smoke"], work, env)
    log = run(["dvc", "repro"], work, env)
    return work, env, log


@pytest.mark.slow
def test_smoke_pipeline_writes_outs_and_metrics(smoke_repo):
    work, _, log = smoke_repo
    assert "Running stage 'seed'" in log and "Running stage 'base_model'" in log
    for name in ("s1.jsonl", "s2.jsonl", "keywords.json", "tinyeval.jsonl", "pool.jsonl"):
        assert (work / "data" / "seed" / name).stat().st_size > 0, name
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(work / "models" / "base_model")
    tokenizer = AutoTokenizer.from_pretrained(work / "models" / "base_model")
    assert tokenizer.chat_template and model.num_parameters() > 0
    metrics = json.loads((work / "metrics" / "base_model.json").read_text())
    assert metrics["tokens_seen"] == 20 * 8 * 64
    assert metrics["final_loss"] > 0 and metrics["parameters"] == model.num_parameters()
    assert 0.0 <= metrics["pass@1_greedy"] <= 1.0 and metrics["eval_tasks"] == 8
    assert (work / "metrics" / "base_model" / "plots" / "metrics").is_dir()


@pytest.mark.slow
def test_smoke_evaluate_scores_every_sample(smoke_repo):
    work, _, _ = smoke_repo
    summary = json.loads((work / "metrics" / "evaluate.json").read_text())["tinyeval"]
    assert summary["tasks"] == 8 and summary["samples_per_task"] == 2
    assert 0.0 <= summary["pass@1"] <= 1.0 and "pass@1_t0.8" in summary
    verdicts = (work / "data" / "evaluate" / "tinyeval" / "verdicts_pass1.jsonl").read_text()
    lines = [json.loads(line) for line in verdicts.splitlines()]
    assert len(lines) == 16
    assert sum(summary["statuses_pass1"].values()) == 16
    assert {
        "task_id",
        "completion_id",
        "passed",
        "status",
        "tests_passed",
        "tests_total",
        "detail",
    } <= set(lines[0])


@pytest.mark.slow
def test_second_repro_runs_nothing_and_forced_repro_is_deterministic(smoke_repo):
    work, env, _ = smoke_repo
    again = run(["dvc", "repro"], work, env)
    assert "Running stage" not in again
    lock = (work / "dvc.lock").read_text()
    # A fresh checkpoint cache, so base_model trains from scratch rather than resuming.
    env = {**env, "CODEALIGN_CACHE": str(work / ".cache-forced")}
    forced = run(["dvc", "repro", "-f"], work, env)
    assert "Running stage 'base_model'" in forced
    assert (work / "dvc.lock").read_text() == lock
