"""Section "Edit sequences against programs": `lintseq_eval` and `codealign lintseq-seeds`."""

from __future__ import annotations

from codealign.report.common import (
    LINTSEQ_EVAL,
    LINTSEQ_SEEDS,
    Context,
    base_digests,
    cell,
    need,
    spread,
    table,
)


def _passk_first(key: str) -> tuple:
    """pass@1, pass@10, pass@50, then the other metrics by name."""
    k = key.removeprefix("pass@")
    return (0, int(k), "") if k.isdigit() else (1, 0, key)


def section_lintseq(ctx: Context) -> list[str]:
    """Edits against programs: pass@k of both adapters from `lintseq_eval`, and over
    training seeds from `codealign lintseq-seeds` where it has run."""
    lines = ["## Edit sequences against programs (LintSeq)", ""]
    data = ctx.load(LINTSEQ_EVAL)
    if data is None:
        return lines + ctx.not_run(LINTSEQ_EVAL, "lintseq_eval")
    where = str(ctx.path(LINTSEQ_EVAL))
    scores = {t: need(data, t, where, dict) for t in ("code", "edits")}
    ks = sorted(int(key[5:]) for key in scores["code"] if key.startswith("pass@"))
    rows = [
        [
            target,
            *[cell(need(s, f"pass@{k}", f"{where}: {target}", (int, float))) for k in ks],
            cell(need(s, "edit_failed_share", f"{where}: {target}", (int, float))),
        ]
        for target, s in scores.items()
    ]
    lines += [
        f"Two K = 1 adapters trained on the same records for the same "
        f"{need(data, 'steps', where, int)} steps, one on programs and one on their edit "
        f"sequences; {need(data, 'samples_per_task', where, int)} samples per task at "
        f"T = {need(data, 'temperature', where, (int, float)):g} on "
        f"{need(data, 'tasks', where, int)} {need(data, 'benchmark', where, str)} tasks "
        f"(train_seed {data.get('train_seed', '?')}).",
        "",
        *table(["Trained on", *[f"pass@{k}" for k in ks], "edit_failed share"], rows),
    ]
    figure = ctx.include("lintseq_eval/pass_at_k.png", "lintseq_pass_at_k.png", "pass@k against k")
    if figure:
        lines += ["", figure]
    seeds = ctx.load(LINTSEQ_SEEDS)
    if seeds is None:
        return lines + [
            "",
            f"*One seed: {ctx.shown(LINTSEQ_SEEDS)} is written by `codealign lintseq-seeds` "
            "after `dvc exp run --queue -S train_seed=S lintseq_eval` runs (docs/lintseq.md).*",
        ]
    where = str(ctx.path(LINTSEQ_SEEDS))
    by_target = need(seeds, "by_target", where, dict)
    keys = sorted(need(by_target, "code", where, dict), key=_passk_first)
    rows = [
        [
            t,
            *[
                spread(need(need(by_target, t, where, dict), key, where, dict), where)
                for key in keys
            ],
        ]  # fmt: skip
        for t in ("code", "edits")
    ]
    used = ", ".join(str(s) for s in need(seeds, "seeds", where, list))
    lines += ["", *ctx.elsewhere(LINTSEQ_SEEDS, base_digests(seeds.get("base_model_digest")))]
    lines += [
        f"Over train_seed {used}: mean (min–max).",
        "",
        *table(["Trained on", *keys], rows),
    ]
    figure = ctx.include("lintseq_seeds.png", "lintseq_seeds.png", "pass@k against k over seeds")
    if figure:
        lines += ["", figure]
    return lines
