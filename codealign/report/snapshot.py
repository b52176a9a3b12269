"""`codealign snapshot`: a reproduced profile's metrics and report, copied into results/.

A profile's figures are what `dvc repro` left in `metrics/`; `metrics/` is the workspace's
and changes with the next profile switch. A snapshot copies them into
`results/<profile>/` with the provenance every file under results/ carries:

- every `metrics/*.json` and `metrics/*.md` that a stage of dvc.yaml declares (as an out
  or a metric);
- the `report` stage's report and its figures (`metrics/report.md`, `metrics/report/`),
  keeping their layout, so the report's links to its figures still resolve;
- `metrics/stage_times.json` (`benchmarks/bench_stage_times.py --out`), when present and
  measured on the same profile.

Each JSON gets a top-level `provenance` {command, commit, dirty, profile}; where the
source file had a `provenance` of its own (stage_times.json), it is kept under
`provenance.source`. `snapshot.json` beside them lists every file written with its
SHA-256, the sha of dvc.lock, and the same provenance.

It refuses, writing nothing, when `dvc status` says the pipeline is not up to date (the
metrics would not be the params' and code's), when params.yaml equals no profile, and
when --out is a file. Files are read in full before anything is written, then staged in
a temporary folder inside --out and moved over their targets one by one: an error leaves
the older files as they were. It deletes nothing it does not replace: files of an older
snapshot that this one does not write are listed, not removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError

METRICS_DIR = Path("metrics")
REPORT_STAGE = "report"
STAGE_TIMES = METRICS_DIR / "stage_times.json"
MANIFEST = "snapshot.json"
RESULTS_DIR = Path("results")
SCHEMA = "codealign.snapshot/1"


def pipeline_changes(repo: Path) -> dict[str, Any]:
    """`dvc status --json` in `repo`: {} when every stage is up to date."""
    cmd = [sys.executable, "-m", "dvc", "status", "--json"]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise CodealignError(f"dvc status failed in {repo}: {lines[-1]}")
    try:
        changes = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise CodealignError(
            f"dvc status --json in {repo}: not JSON: {proc.stdout[:200]!r}"
        ) from None
    return changes if isinstance(changes, dict) else {"?": changes}


def sources(repo: Path) -> dict[str, Path]:
    """What a snapshot copies: {path under --out: source file}, from dvc.yaml's stages."""
    from dvc.repo import Repo

    root = repo.resolve()
    picked: dict[str, Path] = {}
    report: list[Path] = []
    with Repo(str(root)) as dvc_repo:
        for stage in dvc_repo.index.stages:
            for out in stage.outs:
                rel = Path(os.path.relpath(out.fs_path, root))
                if stage.name == REPORT_STAGE and not out.metric:
                    report.append(rel)
                elif rel.parent == METRICS_DIR and rel.suffix in (".json", ".md"):
                    picked[rel.name] = rel
    pages = [rel for rel in report if rel.suffix == ".md"]
    base = pages[0].parent if len(pages) == 1 else METRICS_DIR
    for rel in report:
        files = sorted(p for p in (root / rel).rglob("*") if p.is_file())
        for path in files if (root / rel).is_dir() else [root / rel]:
            inside = path.relative_to(root)
            dest = inside.relative_to(base) if inside.is_relative_to(base) else inside.name
            picked[Path(dest).as_posix()] = inside
    return dict(sorted(picked.items()))


def _stage_times(repo: Path, profile: str) -> tuple[Path | None, str | None]:
    """metrics/stage_times.json if it was measured on `profile`, else why it is left out."""
    path = repo / STAGE_TIMES
    if not path.is_file():
        return None, None
    from codealign.io import read_json

    data = read_json(path)
    measured = data.get("profile") if isinstance(data, dict) else None
    prov = data.get("provenance") if isinstance(data, dict) else None
    if isinstance(prov, dict) and prov.get("profile"):
        measured = prov["profile"]
    if measured != profile:
        return None, (
            f"{STAGE_TIMES} left out: measured on profile {measured!r}, not {profile!r} "
            f"(python benchmarks/bench_stage_times.py --profile {profile} --out {STAGE_TIMES})"
        )
    return STAGE_TIMES, None


def _with_provenance(path: Path, where: str, prov: dict[str, Any]) -> bytes:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodealignError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CodealignError(
            f"{where}: the top level is a {type(data).__name__}, not an object: "
            "no place for its provenance"
        )
    own = data.get("provenance")
    data["provenance"] = {**prov, "source": own} if own is not None else dict(prov)
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _older_snapshot(out: Path) -> set[str]:
    """The files the snapshot already in `out` wrote (none where there is none)."""
    path = out / MANIFEST
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files", {})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return set()
    return set(files) if isinstance(files, dict) else set()


def _install(out: Path, payload: dict[str, bytes]) -> None:
    """Stage every file in a temporary folder inside `out`, then move each over its target."""
    created = [p for p in [out, *out.parents] if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".snapshot.", suffix=".tmp", dir=out))
    try:
        for dest, data in payload.items():
            (tmp / dest).parent.mkdir(parents=True, exist_ok=True)
            (tmp / dest).write_bytes(data)
        for dest in payload:  # the manifest last: it lists what is in place
            target = out / dest
            if target.is_dir() and not target.is_symlink():
                raise CodealignError(f"{target}: a directory where the snapshot writes a file")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / dest, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for path in created:  # only folders this run made, and only while empty
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)


def snapshot(repo: Path, out: Path | None, command: str) -> tuple[Path, list[str], list[str]]:
    """Copy `repo`'s reproduced metrics into `out`; return (out, written, notes)."""
    from codealign.profiles import PARAMS_FILE, PROFILES_DIR, current
    from codealign.sweeps.records import provenance

    profile = current(repo)
    if profile is None:
        raise CodealignError(
            f"{repo / PARAMS_FILE}: equals no profile in {repo / PROFILES_DIR}/, so the "
            "snapshot cannot name its profile: `codealign profile NAME`, then `dvc repro`"
        )
    out = repo / RESULTS_DIR / profile if out is None else out
    if out.exists() and not out.is_dir():
        raise CodealignError(f"--out {out}: is a file, not a folder")
    changes = pipeline_changes(repo)
    if changes:
        named = ", ".join(sorted(changes)[:8]) + (", ..." if len(changes) > 8 else "")
        raise CodealignError(
            f"the pipeline is not up to date (`dvc status`: {named}): its metrics are not "
            "those of params.yaml and the code; run `dvc repro` first"
        )

    prov = provenance(command, repo, profile)
    notes = []
    picked = sources(repo)
    times, why = _stage_times(repo, profile)
    if times is not None:
        picked[times.name] = times
    elif why:
        notes.append(why)
    if MANIFEST in picked:
        raise CodealignError(f"{picked[MANIFEST]}: its name is the snapshot's manifest's")
    payload: dict[str, bytes] = {}
    for dest, rel in picked.items():
        path = repo / rel
        if not path.is_file():
            raise CodealignError(f"{rel}: declared in dvc.yaml but missing; run `dvc repro`")
        if path.suffix == ".json":
            payload[dest] = _with_provenance(path, rel.as_posix(), prov)
        else:
            payload[dest] = path.read_bytes()
    lock = repo / "dvc.lock"
    manifest = {
        "schema": SCHEMA,
        "provenance": prov,
        "dvc_lock_sha256": _sha256(lock.read_bytes()) if lock.is_file() else None,
        "files": {dest: _sha256(data) for dest, data in payload.items()},
        "sources": {dest: rel.as_posix() for dest, rel in picked.items()},
    }
    payload[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()

    older = _older_snapshot(out) if out.is_dir() else set()
    _install(out, payload)
    left = sorted(older - set(payload))
    if left:
        notes.append(
            f"left in {out}, from an older snapshot and not written by this one "
            f"(remove them if they are obsolete): {', '.join(left)}"
        )
    if prov["dirty"]:
        notes.append("the code differs from the commit recorded (provenance dirty: true)")
    return out, list(payload), notes


@click.command("snapshot", cls=Command)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to write (default: results/<profile> of the repository).",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("."),
    show_default=True,
    help="The repository whose pipeline was reproduced.",
)
def snapshot_command(out: Path | None, repo: Path) -> None:
    """Copy a reproduced profile's metrics and report into results/<profile>.

    Run after `codealign profile NAME` and `dvc repro`: copies every metrics/*.json and
    metrics/*.md that dvc.yaml declares, the report (metrics/report.md and its figures in
    metrics/report/) and metrics/stage_times.json (if measured on this profile) into
    --out. Each JSON gets a top-level `provenance` {command, commit, dirty, profile};
    snapshot.json lists every file written with its SHA-256.

    Refuses, writing nothing, when `dvc status` reports a stage that is not up to date,
    when params.yaml equals no profile in params/, or when --out is a file. Files are
    moved into --out one by one from a staging folder, so an error leaves the older
    files intact. Nothing is deleted except the files it replaces: files in --out that
    it does not write (collector summaries, files of an older snapshot that this one
    no longer writes) are left, and the older snapshot's are listed on stderr.
    """
    from codealign.sweeps.records import command_line

    command = command_line(click.get_current_context())
    out, written, notes = snapshot(repo, out, command)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {len(written)} files to {out}", err=True)
