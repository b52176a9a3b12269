"""`codealign findings`: the verdict rule on constructed run records, and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codealign.dpo.stats import seeds_then_tasks
from codealign.findings.claims import CLAIMS
from codealign.findings.table import findings_command
from codealign.sweeps.records import SCHEMA, build_record

TASKS = [f"tinyeval/{i}" for i in range(40)]


def _counts(rates: list[float], n: int = 10) -> dict[str, list[int]]:
    return {task: [round(rate * n), n] for task, rate in zip(TASKS, rates, strict=True)}


def _ksweep_record(seed: int, routed: list[float], k1: list[float]) -> dict:
    """A K sweep run at K = 5 whose routed and K = 1 models pass each task at `rates`."""
    tasks = {"routed/pass1": _counts(routed), "k1/pass1": _counts(k1)}
    metrics = {
        "tasks": len(TASKS),
        "models": {
            "routed": {"pass@1": sum(routed) / len(routed)},
            "k1": {"pass@1": sum(k1) / len(k1)},
        },
    }
    return build_record(
        sweep="ksweep",
        run=f"k=5-train_seed={seed}-exp{seed}",
        command="codealign ksweep",
        commit="a" * 40,
        dirty=False,
        experiment={"rev": f"{seed}" * 40, "name": f"exp{seed}", "timestamp": None},
        profile="full",
        params={"seed": 0, "k": 5, "train_seed": seed},
        swept={"k": 5, "train_seed": seed},
        varies=["train_seed"],
        metrics=metrics,
        tasks=tasks,
        tasks_missing={},
    )


def _mixture_record(share: float, base_seed: int, bits: float) -> dict:
    return build_record(
        sweep="mixture",
        run=f"code_share={share}-base_seed={base_seed}",
        command="codealign mixture",
        commit="b" * 40,
        dirty=False,
        experiment={"rev": "c" * 40, "name": None, "timestamp": None},
        profile="full",
        params={"seed": 0, "base_model": {"code_share": share, "seed": base_seed}},
        swept={"code_share": share, "base_seed": base_seed},
        varies=["base_model.seed"],
        metrics={"base_model_eval": {"english": {"bits_per_byte": bits}}},
        tasks={},
        tasks_missing={},
    )


def _write(runs: Path, records: list[dict]) -> None:
    for record in records:
        path = runs / record["sweep"] / f"{record['run_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))


def _findings(tmp_path: Path, records: list[dict]) -> tuple:
    runs = tmp_path / "runs"
    _write(runs, records)
    out, md = tmp_path / "findings.json", tmp_path / "findings.md"
    argv = ["--runs-dir", str(runs), "--out", str(out), "--markdown", str(md)]
    result = CliRunner().invoke(findings_command, argv)
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(out.read_text())["claims"]}
    return rows, md.read_text()


def _rates(base: float, shift: float, spread: float = 0.3) -> list[float]:
    """Per-task pass rates varying over tasks (difficulty), shifted by `shift`."""
    return [min(1.0, max(0.0, base + shift + spread * ((i % 5) - 2) / 2)) for i in range(40)]


def test_a_clear_gain_in_the_claimed_direction_supports(tmp_path):
    records = [_ksweep_record(s, _rates(0.5, 0.2), _rates(0.5, 0.0)) for s in (0, 1, 2)]
    rows, md = _findings(tmp_path, records)

    row = rows["specialists-equal-epochs"]
    assert row["verdict"] == "supports"
    (c,) = row["comparisons"]
    assert c["low"] > 0 and c["mean"] == pytest.approx(0.2, abs=0.02)
    assert c["seeds"] == 3 and c["seeds_with_tasks"] == 3 and c["tasks"] == [40, 40, 40]
    assert [s["train_seed"] for s in c["seed_values"]] == [0, 1, 2]
    assert c["varies"] == ["train_seed"] and c["profile"] == "full"
    assert 0 < c["mde"] < 0.2
    assert "| **supports** |" in md


def test_a_clear_loss_contradicts(tmp_path):
    records = [_ksweep_record(s, _rates(0.4, -0.3), _rates(0.4, 0.0)) for s in (0, 1, 2)]
    rows, _ = _findings(tmp_path, records)
    row = rows["specialists-equal-epochs"]
    assert row["verdict"] == "contradicts"
    assert row["comparisons"][0]["high"] < 0


def test_noise_around_zero_is_inconclusive(tmp_path):
    # Per task the routed model wins on half the tasks and loses on the other half.
    flip = [0.2 if i % 2 else -0.2 for i in range(40)]
    routed = [0.5 + d for d in flip]
    records = [_ksweep_record(s, routed, [0.5] * 40) for s in (0, 1, 2)]
    rows, _ = _findings(tmp_path, records)
    c = rows["specialists-equal-epochs"]["comparisons"][0]
    assert rows["specialists-equal-epochs"]["verdict"] == "inconclusive"
    assert c["low"] < 0 < c["high"]


def test_one_run_level_difference_has_no_interval_and_is_inconclusive(tmp_path):
    records = [_mixture_record(0.25, 0, 0.20), _mixture_record(0.0, 0, 0.30)]
    rows, _ = _findings(tmp_path, records)
    assert rows["code-helps-english"]["verdict"] == "inconclusive"
    assert rows["code-helps-english"]["comparisons"][0]["seeds_with_tasks"] == 0


def test_lower_is_better_claims_read_the_sign_the_other_way(tmp_path):
    bits = {0.0: [0.30, 0.31, 0.29], 0.25: [0.24, 0.25, 0.23], 0.5: [0.27, 0.28, 0.26]}
    records = [
        _mixture_record(share, seed, values[seed])
        for share, values in bits.items()
        for seed in (0, 1, 2)
    ]
    rows, _ = _findings(tmp_path, records)
    assert rows["code-helps-english"]["verdict"] == "supports"
    assert rows["code-helps-english"]["comparisons"][0]["mean"] == pytest.approx(-0.06)


def test_an_optimum_must_beat_each_neighbour(tmp_path):
    def run(bits):
        records = [
            _mixture_record(share, seed, values[seed])
            for share, values in bits.items()
            for seed in (0, 1, 2)
        ]
        return _findings(tmp_path / str(len(list(tmp_path.iterdir()))), records)[0]

    best = run({0.0: [0.30, 0.31, 0.29], 0.25: [0.24, 0.25, 0.23], 0.5: [0.27, 0.28, 0.26]})
    assert best["quarter-code-best"]["verdict"] == "supports"
    assert [c["verdict"] for c in best["quarter-code-best"]["comparisons"]] == ["supports"] * 2

    # Better than no code, but half code is better still: the optimum is contradicted.
    beaten = run({0.0: [0.30, 0.31, 0.29], 0.25: [0.24, 0.25, 0.23], 0.5: [0.20, 0.21, 0.19]})
    row = beaten["quarter-code-best"]
    assert [c["verdict"] for c in row["comparisons"]] == ["supports", "contradicts"]
    assert row["verdict"] == "contradicts"

    # Level with one neighbour: not shown to be best, not beaten.
    level = run({0.0: [0.30, 0.31, 0.29], 0.25: [0.24, 0.25, 0.23], 0.5: [0.25, 0.24, 0.23]})
    assert level["quarter-code-best"]["verdict"] == "inconclusive"


def test_every_claim_without_runs_is_not_measured_with_its_command(tmp_path):
    rows, md = _findings(tmp_path, [])
    assert set(rows) == {claim.id for claim in CLAIMS}
    for row in rows.values():
        assert row["verdict"] == "not measured" and row["command"]
    assert md.count("**not measured**") == len(CLAIMS)


def test_seeds_are_resampled_before_tasks():
    # Three seeds whose task differences are all +0.1, +0.1 and -0.3: tasks alone would
    # give three tight intervals; resampling seeds first spans the disagreement.
    stats = seeds_then_tasks([[0.1] * 30, [0.1] * 30, [-0.3] * 30])
    assert stats["low"] < 0 < stats["high"]
    assert stats["mean"] == pytest.approx(-1 / 30)
    tight = seeds_then_tasks([[0.1 + 0.01 * (i % 3)] * 1 for i in range(3)])
    assert tight["low"] > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "a run record is a JSON object"),
        (json.dumps({"schema": SCHEMA}), "key 'sweep' missing"),
        (
            json.dumps(
                {
                    "schema": "other/9",
                    "sweep": "ksweep",
                    "run_id": "x",
                    "command": "c",
                    "params": {},
                    "seeds": {},
                    "metrics": {},
                    "tasks": {},
                }
            ),
            "schema 'other/9'",
        ),
    ],
)
def test_a_malformed_record_is_one_line_naming_the_file(tmp_path, content, message):
    bad = tmp_path / "runs" / "ksweep" / "broken.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    out, md = tmp_path / "findings.json", tmp_path / "findings.md"
    argv = ["--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--markdown", str(md)]
    result = CliRunner().invoke(findings_command, argv)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {bad}: ") and message in line
    assert not out.exists() and not md.exists()


def test_the_report_leads_with_the_findings_table(tmp_path):
    from codealign.params.report import ReportParams
    from codealign.report.render import render_report

    (tmp_path / "metrics").mkdir()
    (tmp_path / "figures").mkdir()
    args = (tmp_path / "metrics", tmp_path / "figures", "figures", tmp_path, ReportParams())
    text, _ = render_report(*args)
    assert text.split("\n## ")[1].startswith("Findings\n")
    assert "*No results/findings.md yet: `codealign findings` writes it" in text

    records = [_ksweep_record(s, _rates(0.5, 0.2), _rates(0.5, 0.0)) for s in (0, 1, 2)]
    runs = tmp_path / "results" / "runs"
    _write(runs, records)
    out, md = tmp_path / "results" / "findings.json", tmp_path / "results" / "findings.md"
    argv = ["--runs-dir", str(runs), "--out", str(out), "--markdown", str(md)]
    assert CliRunner().invoke(findings_command, argv).exit_code == 0
    text, _ = render_report(*args)
    findings = text.split("\n## ")[1]
    assert findings.startswith("Findings\n") and "# Findings" not in findings
    assert "| **supports** |" in findings  # the table itself, as findings.md holds it


def test_runs_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    out = tmp_path / "findings.json"
    argv = ["--runs-dir", str(tmp_path / "runs"), "--out", str(out)]
    argv += ["--markdown", str(tmp_path / "f.md")]
    result = CliRunner().invoke(findings_command, argv)
    assert result.exit_code == 2
    assert result.output == f"error: {tmp_path / 'runs'}: not a directory\n"
    assert not out.exists()


def test_a_bad_per_task_entry_names_the_record_and_arm(tmp_path):
    record = _ksweep_record(0, _rates(0.5, 0.1), _rates(0.5, 0.0))
    record["tasks"]["routed/pass1"]["tinyeval/0"] = [3]  # not [passed, samples]
    runs = tmp_path / "runs"
    _write(runs, [record])
    argv = ["--runs-dir", str(runs), "--out", str(tmp_path / "o.json")]
    argv += ["--markdown", str(tmp_path / "o.md")]
    result = CliRunner().invoke(findings_command, argv)
    assert result.exit_code == 2
    assert "tasks.routed/pass1: expected {task_id: [passed, n]}" in result.output
    assert str(runs / "ksweep") in result.output


def _phase_record(share: float, base_seed: int, bits: float, pass1: float, **phases) -> dict:
    """A mixture-sweep record of a run with a phase schedule (`phases`: base_model keys)."""
    base = {"code_share": share, "seed": base_seed, **phases}
    label = "+".join(f"{k}={v}" for k, v in sorted(phases.items()))
    return build_record(
        sweep="mixture",
        run=f"code_share={share}-schedule={label}-base_seed={base_seed}",
        command="codealign mixture",
        commit="b" * 40,
        dirty=False,
        experiment={"rev": "d" * 40, "name": None, "timestamp": None},
        profile="full",
        params={"seed": 0, "base_model": base},
        swept={"code_share": share, "base_seed": base_seed},
        varies=["base_model.seed"],
        metrics={
            "base_model_eval": {"english": {"bits_per_byte": bits}},
            "base_model": {"pass@1_t0.8": pass1},
        },
        tasks={},
        tasks_missing={},
    )


COOL = {"cooldown_fraction": 0.2}
BALANCED = {"continue_fraction": 0.5, "continue_code_share": 0.1}


def test_phase_claims_select_their_schedules_and_single_mixtures_exclude_them(tmp_path):
    records = []
    for seed in (0, 1, 2):
        records.append(
            _phase_record(0.25, seed, 0.22 + 0.01 * seed, 0.3, **COOL, cooldown_code_share=0.25)
        )
        records.append(
            _phase_record(0.25, seed, 0.26 + 0.01 * seed, 0.3, **COOL, cooldown_code_share=0.0)
        )
        # balanced -> text: best on English, beaten on code by the 0.5 single mixture.
        records.append(_phase_record(0.5, seed, 0.20 + 0.01 * seed, 0.40, **BALANCED))
        for share, bits, pass1 in ((0.0, 0.30, 0.0), (0.25, 0.24, 0.45), (0.5, 0.27, 0.50)):
            record = _phase_record(share, seed, bits + 0.01 * seed, pass1 + 0.01 * seed)
            if seed == 1:  # an explicit 0 fraction and null shares: one mixture too
                record["params"]["base_model"].update(cooldown_fraction=0, continue_fraction=None)
            records.append(record)
    rows, _ = _findings(tmp_path, records)

    cool = rows["code-in-cooldown"]
    assert cool["verdict"] == "supports"
    (c,) = cool["comparisons"]
    assert c["mean"] == pytest.approx(-0.04) and c["seeds"] == 3
    used = [Path(p).name for p in c["records"]]
    assert all("cooldown_fraction=0.2" in name for name in used)

    english = rows["balanced-then-text"]
    assert [c["verdict"] for c in english["comparisons"]] == ["supports"] * 3
    assert english["verdict"] == "supports"
    assert english["comparisons"][1]["mean"] == pytest.approx(-0.04)
    code = rows["balanced-then-text-code"]
    assert [c["verdict"] for c in code["comparisons"]] == ["supports", "contradicts", "contradicts"]
    assert code["verdict"] == "contradicts"
    # The single-mixture claims read the single mixtures only: 0.25 vs 0 is 0.24 - 0.30,
    # not the cooldown runs' 0.22 or 0.26, for all three seeds (seed 1's explicit 0).
    quarter = rows["code-helps-english"]["comparisons"][0]
    assert quarter["mean"] == pytest.approx(-0.06) and quarter["seeds"] == 3
    assert not any("schedule=c" in Path(p).name for p in quarter["records"])


def test_phase_claims_are_not_measured_without_their_schedule(tmp_path):
    records = [
        _phase_record(share, seed, 0.3, 0.3) for share in (0.0, 0.25, 0.5) for seed in (0, 1)
    ]
    rows, _ = _findings(tmp_path, records)
    assert rows["code-helps-english"]["verdict"] != "not measured"
    for claim in ("code-in-cooldown", "balanced-then-text", "balanced-then-text-code"):
        assert rows[claim]["verdict"] == "not measured"
        assert "codealign mixture" in rows[claim]["command"]
        assert "base_model." in rows[claim]["command"]
