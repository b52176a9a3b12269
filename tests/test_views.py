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


def _plots() -> dict[str, dict | None]:
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    return {
        next(iter(p)) if isinstance(p, dict) else p: next(iter(p.values()))
        if isinstance(p, dict)
        else None
        for p in plots
    }


def _outs() -> list[str]:
    """Every stage out of dvc.yaml, with `${...}` and foreach keys filled in."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = []
    for stage in stages.values():
        body = stage.get("do", stage)
        names = {}
        for entry in body.get("vars", []):
            names.update(entry)
        keys = list(stage["foreach"]) if "foreach" in stage else [None]
        for key in keys:
            for out in body.get("outs", []) + body.get("metrics", []):
                path = next(iter(out)) if isinstance(out, dict) else out
                for name, value in names.items():
                    path = path.replace("${" + name + "}", str(value))
                outs.append(path.replace("${key}", str(key)))
    return outs


def _is_out(path: str, outs: list[str]) -> bool:
    return any(path == out or path.startswith(out.rstrip("/") + "/") for out in outs)


def test_every_plot_is_titled_and_overlays_its_runs():
    outs = _plots()
    stage_outs = _outs()
    series = {name: props for name, props in outs.items() if props is not None}
    assert len(series) >= 10
    for name, props in series.items():
        assert props["template"] == "runs" and props["x"] == "step", name
        assert props["title"] and props["x_label"] and props["y_label"], name
        for source, field in props["y"].items():
            # `<live dir>/curves/<metric>.tsv`, which overlay_curves writes in a stage's out
            assert source.endswith(f"/curves/{field}.tsv") and _is_out(source, stage_outs), source
    # One plot per metric: no two plots draw the same file.
    sources = [source for props in series.values() for source in props["y"]]
    assert len(sources) == len(set(sources))
    assert (ROOT / ".dvc" / "plots" / "runs.json").is_file()
    # DPO's curves, as SFT's.
    assert {"dpo_loss", "dpo_reward_margin", "dpo_reward_accuracy"} <= set(series)
    for png in (name for name, props in outs.items() if props is None):
        assert png.endswith(".png") and _is_out(png, stage_outs), png


def test_every_figure_of_the_report_is_a_plot():
    """Each PNG in the committed report is listed in `plots:`, is a copy of one that is,
    or draws curves that `plots:` overlay."""
    plots = _plots()
    images = {name for name, props in plots.items() if props is None}
    sources = " ".join(s for props in plots.values() if props for s in props["y"])
    listed = {(ROOT / name).read_bytes() for name in images if (ROOT / name).is_file()}
    for png in sorted((ROOT / "metrics" / "report").glob("*.png")):
        name = f"metrics/report/{png.name}"
        if name in images or png.read_bytes() in listed:
            continue
        family = png.stem.removeprefix("curves_")
        assert png.stem.startswith("curves_") and f"metrics/{family}/curves/" in sources, name


def test_overlay_curves_put_every_run_of_a_metric_in_one_file(tmp_path):
    from dvclive import Live

    from codealign.lm.training import overlay_curves

    live_dir = tmp_path / "sft"
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=False) as live:
        for adapter, losses in (("adapter_1", [0.9, 0.5]), ("adapter_0", [0.8])):
            for step, loss in enumerate(losses, start=1):
                live.step = step * 5
                live.log_metric(f"{adapter}/train/loss", loss)
                live.log_metric(f"{adapter}/eval/eval_loss", loss + 0.1)
                live.next_step()
    written = overlay_curves(live_dir)
    assert [p.name for p in written] == ["eval_loss.tsv", "loss.tsv"]
    assert (live_dir / "curves" / "loss.tsv").read_text().splitlines() == [
        "step\trun\tloss",
        "5\tsft/adapter_0\t0.8",
        "5\tsft/adapter_1\t0.9",
        "10\tsft/adapter_1\t0.5",
    ]
    # A stage with nothing to train still writes each file `plots:` names, header only.
    (tmp_path / "stage_4").mkdir()
    assert overlay_curves(tmp_path / "stage_4", ["reward_margin"]) == [
        tmp_path / "stage_4" / "curves" / "reward_margin.tsv"
    ]
    header = (tmp_path / "stage_4" / "curves" / "reward_margin.tsv").read_text()
    assert header == "step\trun\treward_margin\n"
