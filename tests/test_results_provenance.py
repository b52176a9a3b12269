"""Every JSON under results/ says which command wrote it, at which commit, on which profile."""

from __future__ import annotations

import json
from pathlib import Path

from codealign.findings.provenance import LEGACY, provenance_of, unrecorded
from codealign.sweeps.records import RUNS_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_every_results_json_records_its_command_commit_and_profile():
    assert unrecorded(ROOT) == []


def test_the_legacy_list_names_files_that_exist_with_a_reason_and_none_findings_reads():
    for rel, reason in LEGACY.items():
        assert (ROOT / rel).is_file(), f"{rel}: listed as legacy but absent (drop it)"
        data = json.loads((ROOT / rel).read_text())
        # `codealign snapshot` or a collector rewrote it: no longer legacy.
        assert provenance_of(data) is None, f"{rel}: records its provenance now (drop it)"
        assert len(reason) > 20
        assert not rel.startswith(RUNS_DIR.as_posix())  # findings read results/runs only
    documented = (ROOT / "results" / "full" / "README.md").read_text()
    for rel in LEGACY:
        assert Path(rel).name in documented, f"{rel}: not in results/full/README.md"


def test_a_json_without_provenance_is_reported(tmp_path):
    (tmp_path / "results" / "x").mkdir(parents=True)
    (tmp_path / "results" / "x" / "bare.json").write_text(json.dumps({"pass@1": 0.5}))
    with_prov = {"provenance": {"command": "codealign ksweep", "commit": "a", "profile": None}}
    (tmp_path / "results" / "x" / "ok.json").write_text(json.dumps(with_prov))
    (tmp_path / "results" / "x" / "broken.json").write_text("{")
    assert unrecorded(tmp_path) == ["results/x/bare.json", "results/x/broken.json"]
    assert provenance_of({"command": "", "commit": "a", "profile": "full"}) is None
