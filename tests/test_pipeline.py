"""The whole DAG on params/smoke.yaml in a scratch copy of the repository, through DVC."""

import json
import os
import re
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
def test_smoke_evaluate_tables_base_k1_and_routed_specialists(smoke_repo):
    work, _, _ = smoke_repo
    summary = json.loads((work / "metrics" / "evaluate.json").read_text())["tinyeval"]
    assert summary["tasks"] == 8 and summary["samples_per_task"] == 2
    models = summary["models"]
    assert set(models) == {"base", "k1", "routed"}
    assert models["k1"]["k"] == 1 and models["routed"]["k"] == 2
    assert sum(models["routed"]["tasks_by_cluster"]) == 8
    assert set(models["routed"]["pass@1_by_cluster"]) == {"0", "1"}
    for name, row in models.items():
        assert 0.0 <= row["pass@1"] <= 1.0 and "pass@1_t0.8" in row
        verdicts = work / "data" / "evaluate" / "tinyeval" / name / "verdicts_pass1.jsonl"
        lines = [json.loads(line) for line in verdicts.read_text().splitlines()]
        assert len(lines) == 16 and sum(row["statuses_pass1"].values()) == 16
        assert {"task_id", "completion_id", "passed", "status", "tests_passed"} <= set(lines[0])
    table = (work / "metrics" / "evaluate.md").read_text()
    assert "| tinyeval | routed | 2 |" in table and "| tinyeval | k1 | 1 |" in table


@pytest.mark.slow
def test_smoke_specialists_are_served_over_one_base_model(smoke_repo):
    work, env, _ = smoke_repo
    router = json.loads((work / "models" / "sft" / "router.json").read_text())
    assert router["k"] == 2
    for i in range(2):
        assert (work / "models" / "sft" / f"adapter_{i}" / "adapter_config.json").is_file()
    out = run(
        ["codealign", "generate", "--model", "models/sft", "Write a function that adds two."],
        work,
        env,
    )
    assert "cluster" in out
    clusters = json.loads((work / "metrics" / "cluster.json").read_text())
    assert clusters["k"] == 2 and sum(clusters["sizes"]) == clusters["train_items"]
    assert (work / "metrics" / "cluster" / "projection.png").stat().st_size > 0


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


@pytest.mark.slow
def test_smoke_report_and_lintseq(smoke_repo):
    work, _, _ = smoke_repo
    report = (work / "metrics" / "report.md").read_text()
    for section in (
        "## Dataset",
        "## Deduplication",
        "## Clusters",
        "## Models",
        "## Curriculum DPO",
    ):
        assert section in report
    for link in re.findall(r"\]\((report/[^)]+\.png)\)", report):
        assert (work / "metrics" / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
    edits = json.loads((work / "metrics" / "lintseq.json").read_text())
    assert edits["splits"]["train"]["sequences"] > 0 and edits["sequences"] >= 142


@pytest.mark.slow
def test_push_to_a_local_remote_then_a_fresh_clone_pulls_and_has_nothing_to_run(
    smoke_repo, tmp_path
):
    work, env, _ = smoke_repo
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], work, env)
    run(["dvc", "push"], work, env)
    run([*git, "add", "-A"], work, env)
    run([*git, "commit", "-qm", "results"], work, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path, env)
    assert not (clone / "models" / "sft").exists()
    run(["dvc", "pull"], clone, env)
    assert (clone / "models" / "sft" / "router.json").is_file()
    assert "up to date" in run(["dvc", "status"], clone, env)
    assert "Running stage" not in run(["dvc", "repro"], clone, env)


def ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_changing_k_reruns_only_cluster_sft_evaluate_and_dpo_only_dpo_then_report(smoke_repo):
    # Runs last: it leaves the scratch repository at k = 3 and dpo.beta = 0.2.
    work, env, _ = smoke_repo
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("\nk: 2", "\nk: 3", 1))
    assert ran(run(["dvc", "repro"], work, env)) == {"cluster", "sft", "evaluate", "report"}
    assert json.loads((work / "metrics" / "cluster.json").read_text())["k_requested"] == 3
    params.write_text(params.read_text().replace("  beta: 0.1", "  beta: 0.2", 1))
    dpo = {f"dpo@stage_{i}" for i in range(1, 5)} | {"dpo_shuffled"}
    # dpo_compare and report rerun only when a DPO metric changed (not when every
    # smoke bucket is empty and the stages write the same files again).
    assert dpo <= ran(run(["dvc", "repro"], work, env)) <= dpo | {"dpo_compare", "report"}
