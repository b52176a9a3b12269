"""Edits against programs: params, decoding failures counted not raised, pass@k, the stage."""

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage
from tiny_specialists import ADD, ADD_CODE, make_base_model, sft_records

from codealign.edits.lintseq import build_split
from codealign.edits.lintseq_eval import decode_answers, reason_kind, summarize
from codealign.errors import CodealignError
from codealign.evaluation.evaluate import score_decoded as score_samples
from codealign.params.edits import LintseqEvalParams, LintseqParams
from codealign.problems import problem_from_record
from codealign.specialists.adapters import model_digest

ROOT = Path(__file__).resolve().parents[1]


def tinyeval_task(i: int) -> dict:
    """A tinyeval-style task whose solution is tiny_specialists' add_<i>."""
    code = ADD_CODE.format(i=i)
    head, body = code.rsplit("    return", 1)
    return {
        "task_id": f"tinyeval/{i}",
        "prompt": head,
        "canonical_solution": "    return" + body,
        "test": f"def check(candidate):\n    assert candidate(2) == {2 + i}\n",
        "entry_point": f"add_{i}",
        "instruction": ADD.format(i=i),
    }


def edit_records(records: list[dict]) -> list[dict]:
    return build_split(records, LintseqParams(samples=2), 0, progress=False).records


# ---------------------------------------------------------------------------- params


def test_n_below_the_largest_k_is_one_error_line_and_writes_nothing(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"seed": 0, "k": 1, "lintseq_eval": {"n": 20, "ks": [1, 10, 50]}})
    )
    metrics = tmp_path / "metrics.json"
    result = CliRunner().invoke(
        stage("lintseq_eval"),
        ["--params", str(params), "--metrics", str(metrics), "--data-dir", "nowhere"],
    )
    assert result.exit_code == 2
    assert result.output == (
        "error: lintseq_eval.n must be >= the largest of lintseq_eval.ks (50), got 20\n"
    )
    assert not metrics.exists()


def test_bad_ks_name_the_key():
    assert LintseqEvalParams.from_dict({}, "lintseq_eval").ks == (1, 10, 20)  # params.yaml's
    with pytest.raises(CodealignError, match=r"^lintseq_eval.ks\[1\] must be an integer >= 1"):
        LintseqEvalParams.from_dict({"ks": [1, 0]}, "lintseq_eval")
    with pytest.raises(CodealignError, match=r"^lintseq_eval.ks must name at least one k$"):
        LintseqEvalParams.from_dict({"ks": []}, "lintseq_eval")
    assert LintseqEvalParams.from_dict({"n": 10, "ks": [1, 10]}, "lintseq_eval").n == 10


# ---------------------------------------------------------------------------- decoding


def test_decoding_failures_are_counted_with_their_reason_not_raised():
    record = next(r for r in edit_records(sft_records(3)) if "<|diff|>" in r["target"])
    target = record["target"]
    answers = [
        target,  # rebuilds the program
        "",  # an empty sequence
        "def add_1(x):\n    return x + 1\n",  # a program, not a diff
        "@@ -3,0 +4 @@\n+    return 1\n",  # does not fit the empty program
        target[: len(target) * 2 // 3],  # cut off by the token budget
        "@@ -0,0 +1 @@\n+x = 1\n<|diff|>\n@@ -1 +1 @@\n-y = 2\n+y = 3\n",  # context mismatch
    ]
    samples = decode_answers(["t"], [answers], "edits", "<|diff|>")
    assert [s["decode"] for s in samples] == ["ok"] + ["edit_failed"] * 5
    assert samples[0]["completion"] == record["code"] and samples[0]["edits"] > 1
    assert all(s["completion"] is None and s["reason"] for s in samples[1:])
    assert samples[1]["reason"] == "no edit in the output"
    assert "context mismatch" in samples[5]["reason"]
    code = decode_answers(["t"], [["```python\nx = 1\n```\nThat is all.", ""]], "code", "<|diff|>")
    assert [s["completion"] for s in code] == ["x = 1\n", "\n"]
    assert {s["decode"] for s in code} == {"ok"}


class FakeSandbox:
    """Passes a program that returns x + 1; records what it was asked to judge."""

    def __init__(self):
        self.calls = []

    def score(self, problems, samples, *, full_program, progress):
        assert full_program
        self.calls.append([s["completion_id"] for s in samples])
        return [
            {
                "task_id": s["task_id"],
                "completion_id": s["completion_id"],
                "passed": "return x + 1" in s["completion"],
                "status": "passed" if "return x + 1" in s["completion"] else "failed",
                "tests_passed": 0,
                "tests_total": 1,
                "detail": "",
            }
            for s in samples
        ]


def test_only_decoded_programs_reach_the_sandbox_and_verdicts_keep_sample_order():
    task = tinyeval_task(1)
    problems = {task["task_id"]: problem_from_record(task, "tinyeval:1")}
    good = "@@ -0,0 +1,2 @@\n+def add_1(x):\n+    return x + 1\n"
    answers = ["garbage", good, "", good.replace("+ 1", "+ 2")]
    samples = decode_answers([task["task_id"]], [answers], "edits", "<|diff|>")
    sandbox = FakeSandbox()
    verdicts = score_samples(sandbox, problems, samples)
    assert sandbox.calls == [[1, 3]]
    assert [v["completion_id"] for v in verdicts] == [0, 1, 2, 3]
    assert [v["status"] for v in verdicts] == ["edit_failed", "passed", "edit_failed", "failed"]
    assert verdicts[0]["tests_total"] == 1 and verdicts[0]["detail"]

    nothing = FakeSandbox()
    failed = decode_answers([task["task_id"]], [["", "x"]], "edits", "<|diff|>")
    assert [v["status"] for v in score_samples(nothing, problems, failed)] == ["edit_failed"] * 2
    assert nothing.calls == []  # the sandbox refuses an empty batch


def test_summary_orders_pass_at_k_and_counts_edit_failed_by_kind():
    samples, verdicts = [], []
    for task in range(4):
        for j in range(50):
            failed = j % 5 == 0
            passed = not failed and (task == 0 or (task == 1 and j == 7))
            reason = f"edit {j % 3 + 1}: hunk ends early: {j} lines missing" if failed else ""
            decode = "edit_failed" if failed else "ok"
            samples.append(
                {"task_id": f"t{task}", "completion_id": j, "decode": decode,
                 "reason": reason, "edits": None if failed else 2}
            )  # fmt: skip
            verdicts.append(
                {"task_id": f"t{task}", "completion_id": j, "passed": passed,
                 "status": "edit_failed" if failed else ("passed" if passed else "failed")}
            )  # fmt: skip
    metrics, curve = summarize(samples, verdicts, (1, 10, 50), 50)
    assert sorted(curve) == list(range(1, 51))
    assert 0 < metrics["pass@1"] < metrics["pass@10"] < metrics["pass@50"] == 0.5
    assert metrics["edit_failed"] == 40 and metrics["edit_failed_share"] == 40 / 200
    assert metrics["edit_failed_reasons"] == {"edit N: hunk ends early: N lines missing": 40}
    assert metrics["statuses"]["edit_failed"] == 40 and metrics["mean_edits_decoded"] == 2
    assert reason_kind("hunk 2: expected 'a 1', found \"b\"") == "hunk N: expected '…', found '…'"


# ---------------------------------------------------------------------------- the stage


@pytest.mark.slow
def test_the_stage_trains_both_for_equal_steps_and_reports_pass_at_k(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEALIGN_CACHE", str(tmp_path / "cache"))
    base = make_base_model(tmp_path / "base")
    data = tmp_path / "lintseq"
    data.mkdir()
    splits = {"train": sft_records(6), "validation": sft_records(1, start=6)}
    for split, records in splits.items():
        lines = [json.dumps(r) + "\n" for r in edit_records(records)]
        (data / f"{split}.jsonl").write_text("".join(lines))
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    tasks = [tinyeval_task(i) for i in (1, 2, 3, 4)]
    (seed_dir / "tinyeval.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    params = {
        "seed": 0,
        "k": 1,
        "sft": {"batch_size": 4, "epochs": 1.0, "save_steps": 2, "lora_r": 4, "lora_alpha": 16,
                "learning_rate": 5e-3, "logging_steps": 1, "eval_batch_size": 32,
                "max_length": 512},
        "lintseq_eval": {"limit": 3, "n": 50, "ks": [1, 10, 50], "epochs": None,
                         "max_new_tokens": 16, "workers": 1},
    }  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "outs"
    result = CliRunner().invoke(
        stage("lintseq_eval"),
        [
            *("--params", str(tmp_path / "params.yaml")),
            *("--data-dir", str(data), "--seed-dir", str(seed_dir), "--base", str(base)),
            *("--models-out", str(out / "models"), "--out", str(out / "data")),
            *("--metrics", str(out / "metrics.json"), "--plots", str(out / "plots")),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == 3 and metrics["samples_per_task"] == 50
    assert metrics["base_model_digest"] == model_digest(base)["sha256"]
    assert metrics["train_items"] == 12 and metrics["validation_items"] == 2
    assert metrics["steps"] == metrics["code"]["train"]["steps"] == 3
    assert metrics["edits"]["train"]["steps"] == 3
    answer_tokens = {t: metrics[t]["train"]["mean_answer_tokens"] for t in ("code", "edits")}
    assert answer_tokens["edits"] > answer_tokens["code"]
    for target in ("code", "edits"):
        m = metrics[target]
        assert m["pass@1"] <= m["pass@10"] <= m["pass@50"]
        assert m["samples"] == 150 and sum(m["statuses"].values()) == 150
        assert m["statuses"].get("edit_failed", 0) == m["edit_failed"]
        assert (out / "models" / target / "router.json").is_file()
        verdicts = (out / "data" / target / "verdicts.jsonl").read_text().splitlines()
        assert len(verdicts) == 150
    assert metrics["code"]["edit_failed"] == 0
    # 16 tokens cut the tiny model's edit sequences short: failures, counted by reason.
    assert metrics["edits"]["edit_failed"] > 0
    assert sum(metrics["edits"]["edit_failed_reasons"].values()) == metrics["edits"]["edit_failed"]
    curves = json.loads((out / "data" / "pass_at_k.json").read_text())
    assert sorted(curves) == ["code", "edits"] and len(curves["code"]) == 50
    assert (out / "plots" / "pass_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "plots" / "edits" / "plots" / "metrics" / "adapter_0" / "train").is_dir()


# --- over seeds: `codealign lintseq-seeds` --------------------------------------------


def _lintseq_metrics(seed: int, edits_pass1: float, base: str = "base-a") -> dict:
    def target(pass1: float, failed: float) -> dict:
        return {"pass@1": pass1, "pass@10": pass1 + 0.2, "pass@50": pass1 + 0.3,
                "edit_failed_share": failed}  # fmt: skip

    metrics = {"benchmark": "tinyeval", "tasks": 100, "samples_per_task": 50,
               "train_seed": seed, "code": target(0.3 + 0.01 * seed, 0.0),
               "edits": target(edits_pass1, 0.1)}  # fmt: skip
    return {**metrics, "base_model_digest": base}


def _seed_rev(rev: str, name, timestamp, metrics: dict | None, state=None, params=None) -> dict:
    shown = {"metrics/lintseq_eval.json": {"data": metrics}} if metrics else {}
    entry = {
        "rev": rev,
        "name": name,
        "data": {"rev": rev, "timestamp": timestamp, "metrics": shown,
                 "params": {"params.yaml": {"data": {"seed": 0, "k": 5, **(params or {})}}}},
        "error": None,
        "experiments": None,
    }  # fmt: skip
    return entry if state is None else {"executor": {"state": state}, "name": name, "revs": [entry]}


def _seeds_listing() -> list:
    def experiment(rev):
        return {"executor": None, "name": rev["name"], "revs": [rev]}

    baseline = _seed_rev("e" * 40, "main", "2026-01-01T08:00:00", _lintseq_metrics(0, 0.20))
    baseline["experiments"] = [
        experiment(_seed_rev("1" * 40, "s1", "2026-01-01T09:00:00", _lintseq_metrics(1, 0.30))),
        experiment(_seed_rev("2" * 40, "s2", "2026-01-01T10:00:00", _lintseq_metrics(2, 0.40))),
        # Ran `-S k=10` only: shows its baseline's file (seed 0), a repeat, not a seed.
        experiment(_seed_rev("3" * 40, "k10", "2026-01-01T11:00:00", _lintseq_metrics(0, 0.20))),
        _seed_rev("4" * 40, "queued", None, _lintseq_metrics(3, 0.9), state="queued"),
        # The newest seed-0 run, but on another base model (`-S base_model.code_share=0.5`).
        experiment(
            _seed_rev(
                "6" * 40,
                "share",
                "2026-01-01T12:00:00",
                _lintseq_metrics(0, 0.9, "base-b"),
                params={"base_model": {"code_share": 0.5}},
            )
        ),
        # Written before the stage recorded its seed: cannot be placed.
        experiment(
            _seed_rev(
                "5" * 40,
                "old",
                "2026-01-01T07:00:00",
                {**_lintseq_metrics(0, 0.2), "train_seed": None},
            )
        ),  # fmt: skip
    ]
    workspace = _seed_rev("workspace", None, None, _lintseq_metrics(0, 0.20))
    return [workspace, baseline]


def _collect_seeds(tmp_path: Path, listing):
    from codealign.sweeps.lintseq_seeds import lintseq_seeds_command

    path = tmp_path / "exp_show.json"
    path.write_text(listing if isinstance(listing, str) else json.dumps(listing))
    out, plot = tmp_path / "out" / "seeds.json", tmp_path / "out" / "seeds.png"
    argv = ["--from-json", str(path), "--out", str(out), "--plot", str(plot)]
    argv += ["--runs-dir", str(tmp_path / "runs")]
    return CliRunner().invoke(lintseq_seeds_command, argv), out, plot


def test_seed_collector_aggregates_each_recorded_seed_once(tmp_path):
    result, out, plot = _collect_seeds(tmp_path, _seeds_listing())

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["seeds"] == [0, 1, 2] and summary["ks"] == [1, 10, 50]
    edits = summary["by_target"]["edits"]["pass@1"]
    assert edits["values"] == [0.2, 0.3, 0.4] and edits["min"] == 0.2 and edits["max"] == 0.4
    assert edits["mean"] == pytest.approx(0.3)
    code = summary["by_target"]["code"]["pass@50"]
    assert code["values"] == pytest.approx([0.6, 0.61, 0.62])
    assert summary["by_target"]["edits"]["edit_failed_share"]["mean"] == pytest.approx(0.1)
    assert summary["base_model_digest"] == "base-a"
    assert "1 queued" in result.stderr
    assert "1 with other params than the workspace (base_model.code_share)" in result.stderr
    assert "2 older repeats of a train_seed" in result.stderr  # the baseline and the workspace
    assert "1 with a metrics/lintseq_eval.json lacking train_seed or pass@k" in result.stderr
    header, code_row, edits_row = result.stdout.splitlines()
    assert header.split("\t")[:3] == ["target", "seeds", "pass@1"]
    assert edits_row.split("\t")[:3] == ["edits", "3", "0.300 [0.200, 0.400]"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("listing", "message"),
    [
        ("[{", r"exp_show.json:1: invalid JSON"),
        ("[]", r"no finished experiments with metrics/lintseq_eval.json found"),
    ],
)
def test_seed_collector_bad_input_is_one_error_line(tmp_path, listing, message):
    result, out, plot = _collect_seeds(tmp_path, listing)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and re.search(message, line), line
    assert not out.exists() and not plot.exists()


def test_each_seed_counted_gets_a_record(tmp_path):
    result, out, _ = _collect_seeds(tmp_path, _seeds_listing())

    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    records = [json.loads(Path(p).read_text()) for p in summary["records"]]
    assert sorted(r["swept"]["train_seed"] for r in records) == [0, 1, 2]
    for record in records:
        assert record["sweep"] == "lintseq_seeds"
        assert record["metrics"]["train_seed"] == record["swept"]["train_seed"]
        assert set(record["tasks_missing"]) == {"code", "edits"}  # a dump holds no files
    assert summary["provenance"]["command"].startswith("codealign lintseq-seeds")
