"""What a user reads through DVC: `dvc metrics show` on the committed metrics fits a
200-column terminal without a load warning, and only the headline is read as metrics."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def dvc(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_only_the_headline_is_read_as_metrics():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = {
        name: [next(iter(m)) if isinstance(m, dict) else m for m in metrics]
        for name, stage in stages.items()
        if (metrics := stage.get("do", stage).get("metrics"))
    }
    assert declared == {"report": ["${headline}"]}


def test_metrics_show_fits_a_terminal():
    shown = dvc("metrics", "show")
    assert shown.returncode == 0, shown.stderr
    assert "failed to load" not in shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[0] == "Path" and len(lines) >= 6  # a row per headline file
    assert max(len(line) for line in lines) <= 200
