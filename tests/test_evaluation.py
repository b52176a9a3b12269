"""One evaluation path: the `evaluate` stage and DPO's stage-boundary evaluation of the same
policy, tasks, n, temperature, seed and batch size give byte-identical samples and verdicts."""

import json
import shutil

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage
from tiny_specialists import ADD, ADD_CODE, make_base_model, make_router_dir

from codealign.io import write_jsonl

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def tinyeval_task(i: int) -> dict:
    head, body = ADD_CODE.format(i=i).rsplit("    return", 1)
    return {
        "task_id": f"tinyeval/{i}",
        "prompt": head,
        "canonical_solution": "    return" + body,
        "test": f"def check(candidate):\n    assert candidate(2) == {2 + i}\n",
        "entry_point": f"add_{i}",
        "instruction": ADD.format(i=i),
    }


@pytest.mark.slow
def test_evaluate_stage_and_dpo_evaluation_draw_the_same_samples_and_verdicts(tmp_path):
    from codealign.dpo.evaluate import evaluate_runs, load_benchmarks

    base = make_base_model(tmp_path / "base")
    sft = make_router_dir(base, tmp_path / "sft", np.zeros((1, 4), dtype=np.float32))
    seed_dir = tmp_path / "seed"
    write_jsonl(seed_dir / "tinyeval.jsonl", [tinyeval_task(i) for i in range(1, 4)])
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train_seed"] = 7
    params["eval"].update(
        n=3, pass1_temperature=1.0, passk_temperature=1.5, max_new_tokens=12, batch_size=4
    )
    params["eval"]["workers"] = 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out = tmp_path / "evaluate"
    # The same adapter as the seed-only arm's sft_baseline writes it (router.json names it).
    seed_arm = tmp_path / "seed_arm"
    shutil.copytree(sft, seed_arm)
    router = json.loads((seed_arm / "router.json").read_text())
    (seed_arm / "router.json").write_text(json.dumps({**router, "train_data": "seed"}))
    result = CliRunner().invoke(
        stage("evaluate"),
        [
            "--params", str(params_file), "--model", f"k1={sft}", "--model", f"seed={seed_arm}",
            "--seed-dir", str(seed_dir),
            "--out", str(out), "--metrics", str(tmp_path / "m.json"),
            "--table", str(tmp_path / "m.md"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = __import__("json").loads((tmp_path / "m.json").read_text())["tinyeval"]
    assert (summary["tasks"], summary["functions"], summary["confidence"]) == (3, 3, 0.95)
    row = summary["models"]["k1"]
    # What each sft dir trained on, for the collectors: no key in router.json is curated.
    assert (row["train_data"], summary["models"]["seed"]["train_data"]) == ("curated", "seed")
    # Each pass@k carries its interval over tasks, which holds the score.
    for key in ("pass@1", "pass@1_t1.5"):
        assert row[f"{key}_ci"]["low"] <= row[key] <= row[f"{key}_ci"]["high"], key
    ci = row["pass@1_ci"]
    assert (
        f"| tinyeval | 3 | 3 | k1 | 1 | {row['pass@1']:.4f} [{ci['low']:.4f}, "
        in (tmp_path / "m.md").read_text()
    )

    benchmarks = load_benchmarks(["tinyeval"], seed_dir, tmp_path / "raw", 0)
    for tag, temperature in (("pass1", 1.0), ("passk", 1.5)):
        runs = evaluate_runs(
            sft, benchmarks, mode="single", n=3, temperature=temperature, max_new_tokens=12,
            batch_size=4, workers=1, timeout=5.0, seed=7,
        )  # fmt: skip
        run = runs["tinyeval"]
        write_jsonl(tmp_path / f"dpo_samples_{tag}.jsonl", run.samples)
        write_jsonl(tmp_path / f"dpo_verdicts_{tag}.jsonl", run.verdicts)
        stage_dir = out / "tinyeval" / "k1"
        for what in ("samples", "verdicts"):
            assert (tmp_path / f"dpo_{what}_{tag}.jsonl").read_bytes() == (
                stage_dir / f"{what}_{tag}.jsonl"
            ).read_bytes()
        assert len(run.samples) == 9  # 3 tasks x n = 3, in batches of 4 rows
        # The answers are sampled (not all alike), so equal files are not an accident.
        assert len({s["completion"] for s in run.samples}) > 1


def test_policy_kinds(tmp_path):
    from codealign.evaluation.policy import resolve_policy

    base = make_base_model(tmp_path / "base")
    sft = make_router_dir(base, tmp_path / "sft", np.zeros((1, 4), dtype=np.float32))
    assert resolve_policy(base, plain="base").kind == "base"
    assert resolve_policy(base).kind == "merged"
    assert resolve_policy(sft).kind == "adapter"
    assert resolve_policy(sft / "adapter_0", base_dir=base).kind == "adapter"


def test_status_counts_name_no_metrics_key_error():
    """DVC takes a metrics key named `error` for a failure to load the file."""
    from codealign.evaluation.evaluate import status_counts

    verdicts = [{"status": s} for s in ("passed", "error", "failed", "error")]
    assert status_counts(verdicts) == {"failed": 1, "passed": 1, "program_error": 2}
