"""`codealign findings`: every claim of `claims.CLAIMS` measured from the run records.

Reads `results/runs/**/*.json` (written by the sweep commands, `codealign.sweeps.records`)
and writes `results/findings.json` and `results/findings.md`, one row per claim.

The rule. A claim compares arm a with arm b on one measure, paired by seed (`pair_by`):
for each seed both arms measured (within one profile), the per-task differences a - b
where both records hold per-task outcomes for the measure, else the one run-level
difference. `seeds_then_tasks` resamples seeds, then tasks within each seed, for a 95%
interval of the mean difference and the minimum effect detectable at 80% power. The
verdict: `supports` when the interval excludes 0 in the claimed direction, `contradicts`
when it excludes 0 the other way, `inconclusive` otherwise, and also where one run-level
difference is all there is (no interval). An optimum claim is compared pairwise with
each neighbour: `supports` when it beats every one, `contradicts` when some neighbour
beats it, else `inconclusive`. A claim whose arms match no record is `not measured`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from codealign.command import Command
from codealign.errors import CodealignError
from codealign.findings.claims import CLAIMS, OFF, SOURCES, Arm, Claim, Measure
from codealign.io import write_json, write_text
from codealign.passk import estimate_pass_at_k
from codealign.sweeps.records import RUNS_DIR, SCHEMA, flat, provenance, value_before

REQUIRED = {
    "schema": str,
    "sweep": str,
    "run_id": str,
    "command": str,
    "params": dict,
    "seeds": dict,
    "metrics": dict,
    "tasks": dict,
}
SUPPORTS, CONTRADICTS, INCONCLUSIVE, NOT_MEASURED = (
    "supports",
    "contradicts",
    "inconclusive",
    "not measured",
)


def load_records(runs_dir: Path) -> list[dict[str, Any]]:
    """Every record under `runs_dir`, checked; a bad one is one error naming its file."""
    if not runs_dir.exists():
        return []
    if not runs_dir.is_dir():
        raise CodealignError(f"{runs_dir}: not a directory")
    records = []
    for path in sorted(runs_dir.rglob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CodealignError(f"{path}: cannot read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise CodealignError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if not isinstance(record, dict):
            raise CodealignError(f"{path}: a run record is a JSON object")
        for key, kind in REQUIRED.items():
            if not isinstance(record.get(key), kind):
                raise CodealignError(f"{path}: key '{key}' missing or not a {kind.__name__}")
        if record["schema"] != SCHEMA:
            raise CodealignError(f"{path}: schema {record['schema']!r}, expected {SCHEMA!r}")
        for arm, counts in record["tasks"].items():
            if not isinstance(counts, dict) or not all(
                isinstance(c, list) and len(c) == 2 and all(isinstance(x, int) for x in c)
                for c in counts.values()
            ):
                raise CodealignError(f"{path}: tasks.{arm}: expected {{task_id: [passed, n]}}")
        record["_path"] = str(path)
        records.append(record)
    return records


def _lookup(data: Any, path: Sequence[str | int]) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
            data = data[key]
        elif key == "pass@max":
            if not isinstance(data, dict):
                return None
            ks = [int(k.removeprefix("pass@")) for k in data if k.removeprefix("pass@").isdigit()]
            if not ks:
                return None
            data = data.get(f"pass@{max(ks)}")
        else:
            if not isinstance(data, dict):
                return None
            data = data.get(key)
    return data


def _k_of(measure: Measure, record: Mapping[str, Any]) -> int | None:
    """The k of a pass@k measure (resolving pass@max), else None."""
    last = measure.path[-1]
    if not isinstance(last, str) or not last.startswith("pass@"):
        return None
    if last == "pass@max":
        section = _lookup(record["metrics"], measure.path[:-1])
        ks = [int(k.removeprefix("pass@")) for k in section if k.removeprefix("pass@").isdigit()]
        return max(ks) if ks else None
    head = last.removeprefix("pass@").split("_")[0]
    return int(head) if head.isdigit() else None


def value(record: Mapping[str, Any], measure: Measure) -> float | None:
    found = _lookup(record["metrics"], measure.path)
    ok = isinstance(found, int | float) and not isinstance(found, bool) and math.isfinite(found)
    return float(found) if ok else None


def per_task(record: Mapping[str, Any], measure: Measure) -> dict[str, float] | None:
    """Each task's value of the measure (the unbiased pass@k from its verdict counts),
    or None where the record holds no per-task outcomes for it."""
    counts = record["tasks"].get(measure.task_arm) if measure.task_arm else None
    k = _k_of(measure, record)
    if not counts or k is None or any(n < k for _, n in counts.values()):
        return None
    return {task: estimate_pass_at_k(n, c, k) for task, (c, n) in counts.items()}


def matches(record: Mapping[str, Any], arm: Arm) -> bool:
    """Whether the record is of the arm's sweep and params; a key the record's params
    lack (a run from before the param existed) counts at its `before` value, the one that
    behaves as such runs did (`codealign.sweeps.records.value_before`)."""
    if record["sweep"] != arm.sweep:
        return False
    params = flat(record["params"])

    def holds(key: str, want: Any) -> bool:
        got = params[key] if key in params else value_before(key)
        return got in (None, 0) if want == OFF else got == want

    return all(holds(key, want) for key, want in arm.where.items())


def _key(record: Mapping[str, Any], pair_by: Sequence[str]) -> tuple:
    return (record.get("profile"), *(record["seeds"].get(key) for key in pair_by))


def by_seed(records: Sequence[dict], arm: Arm, pair_by: Sequence[str]) -> dict[tuple, dict]:
    """One record per (profile, seeds) with a value for the arm's measure: the first by
    run id, so the choice is the same on every machine."""
    chosen: dict[tuple, dict] = {}
    for record in sorted(records, key=lambda r: r["run_id"]):
        if matches(record, arm) and value(record, arm.measure) is not None:
            chosen.setdefault(_key(record, pair_by), record)
    return chosen


def compare(records: Sequence[dict], a: Arm, b: Arm, claim: Claim) -> dict[str, Any] | None:
    """Arm a against arm b paired by seed, in the profile with the most pairs; None where
    no seed has both."""
    from codealign.dpo.stats import seeds_then_tasks

    left, right = by_seed(records, a, claim.pair_by), by_seed(records, b, claim.pair_by)
    common = sorted(set(left) & set(right), key=lambda key: json.dumps(key))
    if not common:
        return None
    profiles: dict[Any, list[tuple]] = {}
    for key in common:
        profiles.setdefault(key[0], []).append(key)
    profile, keys = max(profiles.items(), key=lambda item: (len(item[1]), str(item[0])))
    per_seed, with_tasks = [], 0
    for key in keys:
        ra, rb = left[key], right[key]
        ta, tb = per_task(ra, a.measure), per_task(rb, b.measure)
        if ta is not None and tb is not None and set(ta) == set(tb):
            per_seed.append([ta[t] - tb[t] for t in sorted(ta)])
            with_tasks += 1
        else:
            per_seed.append([value(ra, a.measure) - value(rb, b.measure)])
    stats = seeds_then_tasks(per_seed)
    used = [left[key] for key in keys] + [right[key] for key in keys]
    return {
        **stats,
        "a": a.measure.label,
        "b": b.measure.label,
        "profile": profile,
        "seed_values": [dict(zip(claim.pair_by, key[1:], strict=True)) for key in keys],
        "seeds_with_tasks": with_tasks,
        "commits": sorted({str(r.get("commit")) for r in used}),
        "dirty": any(r.get("dirty") for r in used),
        "varies": sorted({v for r in used for v in r.get("varies", [])}),
        "records": sorted({r["_path"] for r in used}),
    }


def verdict(stats: Mapping[str, Any], direction: int) -> str:
    """The rule on one comparison: the interval against 0 in the claimed direction."""
    if stats["seeds"] < 2 and max(stats["tasks"]) < 2:
        return INCONCLUSIVE  # one difference: no interval to judge
    if stats["low"] > 0:
        return SUPPORTS if direction > 0 else CONTRADICTS
    if stats["high"] < 0:
        return SUPPORTS if direction < 0 else CONTRADICTS
    return INCONCLUSIVE


def assess(claim: Claim, records: Sequence[dict]) -> dict[str, Any]:
    """A claim's row: its comparisons, and the verdict by the rule."""
    row: dict[str, Any] = {
        "id": claim.id,
        "source": f"{claim.source}: {SOURCES[claim.source]}",
        "claim": claim.sentence,
        "kind": claim.kind,
        "direction": "a > b" if claim.direction > 0 else "a < b",
        "command": claim.command,
        "note": claim.note,
    }
    others = claim.neighbours if claim.kind == "optimum" else (claim.b,) if claim.b else ()
    comparisons = []
    if claim.a is not None:
        for other in others:
            stats = compare(records, claim.a, other, claim)
            if stats is not None:
                stats["verdict"] = verdict(stats, claim.direction)
            comparisons.append(stats)
    if claim.caveat is not None:
        used = [r for r in records if claim.a is not None and matches(r, claim.a)]
        row["note"] = " ".join(filter(None, (claim.note, claim.caveat(used, claim))))
    if not comparisons or any(c is None for c in comparisons):
        return {**row, "verdict": NOT_MEASURED, "comparisons": []}
    verdicts = [c["verdict"] for c in comparisons]
    if CONTRADICTS in verdicts:
        overall = CONTRADICTS
    elif all(v == SUPPORTS for v in verdicts):
        overall = SUPPORTS
    else:
        overall = INCONCLUSIVE
    return {**row, "verdict": overall, "comparisons": comparisons}


def _command(text: str) -> str:
    """A command in backticks; a sentence saying there is none, as it is."""
    return text if text.startswith("no experiment") else f"`{text}`"


def _num(x: float) -> str:
    return f"{x:+.3f}"


def _seeds_text(c: Mapping[str, Any]) -> str:
    keys = sorted({key for seeds in c["seed_values"] for key in seeds})
    shown = "; ".join(
        f"{key} " + ", ".join(str(seeds[key]) for seeds in c["seed_values"]) for key in keys
    )
    varies = ", ".join(c["varies"]) or "none"
    tasks = (
        f"tasks resampled in {c['seeds_with_tasks']} of {c['seeds']}"
        if c["seeds_with_tasks"]
        else "run-level only"
    )
    return f"{shown} (varies: {varies}; {tasks})"


def markdown(rows: Sequence[Mapping[str, Any]], prov: Mapping[str, Any], records: int) -> str:
    head = [
        "# Findings",
        "",
        f"<!-- written by `{prov['command']}` at commit {prov['commit']} (profile: "
        f"{prov['profile']}); do not edit by hand -->",
        "",
        "Each claim of the source works against the committed run records "
        "(`results/runs/`): effect = mean(a - b) paired by seed, 95% interval from a "
        "bootstrap over seeds then tasks, MDE = the smallest effect this design detects at "
        "80% power. Verdict: `supports` / `contradicts` when the interval excludes 0 in / "
        "against the claimed direction, else `inconclusive`; an optimum must beat each "
        "neighbour. The rule: [docs/findings.md](../docs/findings.md).",
        "",
        f"{records} run records read; {sum(r['verdict'] != NOT_MEASURED for r in rows)} of "
        f"{len(rows)} claims measured.",
        "",
        "| source | claim | a vs b | effect [95% interval] | MDE (80%) | seeds | verdict "
        "| profile, commit | reproduce |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines = []
    for row in rows:
        claim = row["claim"] + (f" *{row['note']}*" if row["note"] else "")
        if not row["comparisons"]:
            lines.append(
                f"| {row['source']} | {claim} | | | | | **{row['verdict']}** | "
                f"| {_command(row['command'])} |"
            )
            continue
        for i, c in enumerate(row["comparisons"]):
            lines.append(
                "| "
                + " | ".join(
                    [
                        row["source"] if i == 0 else "",
                        claim if i == 0 else "(optimum, next neighbour)",
                        f"{c['a']} vs {c['b']}",
                        f"{_num(c['mean'])} [{_num(c['low'])}, {_num(c['high'])}]",
                        f"{c['mde']:.3f}",
                        _seeds_text(c),
                        f"**{row['verdict']}**" if i == 0 else c["verdict"],
                        f"{c['profile']}, "
                        + ", ".join(x[:7] for x in c["commits"])
                        + (" (dirty)" if c["dirty"] else ""),
                        _command(row["command"]) if i == 0 else "",
                    ]
                )
                + " |"
            )
    return "\n".join(head + lines) + "\n"


@click.command("findings", cls=Command)
@click.option(
    "--runs-dir",
    type=click.Path(path_type=Path),
    default=RUNS_DIR,
    show_default=True,
    help="The run records the sweep commands wrote.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results/findings.json"),
    show_default=True,
)
@click.option(
    "--markdown",
    "markdown_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results/findings.md"),
    show_default=True,
)
def findings_command(runs_dir: Path, out: Path, markdown_out: Path) -> None:
    """One row per claim of the source works: effect, 95% interval, MDE, verdict.

    Reads every run record under --runs-dir (checked first: a malformed one is one
    error naming its file, and nothing is written), applies the rule of
    docs/findings.md to each claim of codealign/findings/claims.py, and writes --out
    and --markdown. A claim no record measures is listed as `not measured` with the
    command that would measure it.
    """
    from codealign.sweeps.records import command_line

    records = load_records(runs_dir)
    rows = [assess(claim, records) for claim in CLAIMS]
    prov = provenance(command_line(click.get_current_context()))
    profiles = sorted({str(c["profile"]) for row in rows for c in row["comparisons"]})
    prov["profile"] = profiles[0] if len(profiles) == 1 else (profiles or None)
    text = markdown(rows, prov, len(records))
    write_json(out, {"provenance": prov, "records": len(records), "claims": rows})
    write_text(markdown_out, text)
    for row in rows:
        click.echo(f"{row['verdict']:<13} {row['id']}")
    click.echo(f"{len(records)} records from {runs_dir}; wrote {out} and {markdown_out}", err=True)
