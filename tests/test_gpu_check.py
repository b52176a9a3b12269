"""benchmarks/gpu_check.sh: its logic on the CPU (`--tiny`), as a GPU machine would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [str(ROOT / "benchmarks/gpu_check.sh"), *args, "--work", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_tiny_check_runs_every_phase_through_the_project_code(tmp_path):
    out = tmp_path / "report.json"
    result = run("--tiny", "--out", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert json.loads(result.stdout) == report
    assert report["model"] == "microsoft/phi-2" and report["device"] == "cpu"
    for phase in ("sft", "reference", "dpo", "sample"):
        row = report[phase]
        assert row["seconds"] > 0 and row["tokens"] > 0 and row["tokens_per_s"] > 0, phase
        assert "peak_gpu_gib" not in row  # no GPU, no figure
    assert report["sft"]["steps"] == 2 and report["sft"]["lora_r"] == 128  # the paper's r
    assert report["dpo"]["steps"] == 2 and report["reference"]["pairs"] == 4
    assert report["sample"]["rows"] == 4
    assert report["sample"]["tokens"] <= 4 * report["sample"]["max_new_tokens"]
    assert len(report["with_real_weights"]) == 4


def test_without_a_gpu_the_full_check_stops_in_one_line(tmp_path):
    result = run(tmp_path=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "gpu_check: no CUDA device; use --tiny to check the logic on the CPU"
    )
    assert not (tmp_path / "work").exists()
