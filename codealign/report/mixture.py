"""Section "Code share of the pretraining mixture": `base_model_eval` and `codealign mixture`."""

from __future__ import annotations

from codealign.report.common import (
    BASE_MODEL_EVAL,
    MIXTURE,
    NUMBER,
    Context,
    base_digests,
    cell,
    need,
    spread,
    table,
)

MIXTURE_COLUMNS = {
    "english_bits_per_byte": "English bits/byte",
    "code_bits_per_byte": "Code bits/byte",
    "instruction_accuracy": "Held-out instructions",
    "sft_pass@1": "pass@1 after SFT",
}


def section_mixture(ctx: Context) -> list[str]:
    """What the code share of the pretraining corpus moves: this run's `base_model_eval`
    scores, and the ablation over shares from `codealign mixture` where it has run."""
    lines = ["## Code share of the pretraining mixture", ""]
    data = ctx.load(BASE_MODEL_EVAL)
    if data is None:
        return lines + ctx.not_run(BASE_MODEL_EVAL, "base_model_eval")
    where = str(ctx.path(BASE_MODEL_EVAL))
    english, code = need(data, "english", where, dict), need(data, "code", where, dict)
    instructions = need(data, "instructions_heldout", where, dict)
    # code_share is null for an existing model (base_model.name not tiny), which was not
    # pretrained here and is scored on HumanEval's solutions (no tinyeval on real data).
    if data.get("code_share") is None:
        model, solutions = (
            "This run's base model (an existing model, not pretrained here)",
            "HumanEval",
        )
    else:
        share = need(data, "code_share", where, NUMBER)
        model, solutions = f"This run's base model, code share {share:g}", "tinyeval"
    lines.append(
        f"{model}: "
        f"held-out English {cell(need(english, 'bits_per_byte', where, NUMBER))} bits/byte, "
        f"{solutions} solutions {cell(need(code, 'bits_per_byte', where, NUMBER))} bits/byte, "
        f"held-out English instructions {need(instructions, 'correct', where, int)} of "
        f"{need(instructions, 'prompts', where, int)} answered exactly."
    )
    grid = ctx.load(MIXTURE)
    if grid is None:
        return lines + [
            "",
            f"*No ablation yet: {ctx.shown(MIXTURE)} is written by `codealign mixture` after "
            "`dvc exp run --queue -S base_model.code_share=S -S train_seed=T "
            "base_model_eval evaluate` and `-S base_model.seed=B base_model_eval` runs "
            "(docs/code-share.md).*",
        ]
    where = str(ctx.path(MIXTURE))
    rows = []
    for i, point in enumerate(need(grid, "by_share", where, list)):
        at = f"{where}: by_share[{i}]"
        base_seeds = ", ".join(str(seed) for seed in need(point, "base_seeds", at, list))
        sft_runs = len(need(point, "sft_runs", at, list))
        cells = [
            "–" if point.get(key) is None else spread(point[key], f"{at}.{key}")
            for key in MIXTURE_COLUMNS
        ]
        share = f"{need(point, 'code_share', at, NUMBER):g}"
        rows.append([share, base_seeds, str(sft_runs), *cells])
    runs = grid.get("runs") if isinstance(grid.get("runs"), list) else []
    digests = base_digests(*(run.get("model_digest") for run in runs if isinstance(run, dict)))
    lines += ["", *ctx.elsewhere(MIXTURE, digests)]
    lines += [
        f"Over code shares and seeds ({need(grid, 'benchmark', where, str)}); each cell is "
        "the mean (min–max). The base-model columns count each distinct base model once, "
        "one per pretraining seed (`base_model.seed`; `train_seed` does not change it); "
        "pass@1 after SFT is the K = 1 model's, once per SFT run. Compare shares by bits "
        "per byte: each share trains its own tokenizer.",
        "",
        *table(["Code share", "Pretraining seeds", "SFT runs", *MIXTURE_COLUMNS.values()], rows),
    ]
    figure = ctx.include("mixture.png", "mixture.png", "metrics against code share")
    if figure:
        lines += ["", figure]
    return lines
