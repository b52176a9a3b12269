"""Section "Findings": the claims table `codealign findings` writes, which the report leads with."""

from __future__ import annotations

from codealign.report.common import Context

FINDINGS_MD = "results/findings.md"  # beside metrics/: the repository's root


def section_findings(ctx: Context) -> list[str]:
    """results/findings.md as it is (its title a section heading), or how to make it."""
    path = ctx.metrics_dir.parent / FINDINGS_MD
    lines = ["## Findings", ""]
    if not path.is_file():
        return lines + [
            f"*No {FINDINGS_MD} yet: `codealign findings` writes it from the run records "
            "under results/runs/ (docs/findings.md).*"
        ]
    body = path.read_text(encoding="utf-8").splitlines()
    if body and body[0].startswith("# "):
        body = body[1:]
    body = ["#" + line if line.startswith("#") else line for line in body]
    while body and not body[0].strip():
        body = body[1:]
    return lines + [
        f"From `{FINDINGS_MD}`; the sections below are this run's figures, which the "
        "findings judge only where a run record holds them.",
        "",
        *body,
    ]
