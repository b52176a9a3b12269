"""The pipeline's report: one markdown file with tables and PNG figures, read from metrics/.

`write_report` reads what the stages left in `metrics/` and writes `metrics/report.md`
plus its figures in `metrics/report/`. It reads only metrics files, never data or
models, so it runs in seconds and can be rerun after any part of the DAG.

What it assumes, and promises:

- Every input is optional. A section whose file is missing says "Not run" and names
  the stage that writes it; users often run only part of the DAG.
- A file that exists but is malformed (invalid JSON, a missing key, a string where a
  number belongs) stops the report with one `CodealignError` naming the file and key.
- The output is a function of the inputs and the params only: no timestamps, no
  absolute paths, sorted iteration, PNGs without a software-version stamp. Rerunning
  on the same inputs gives byte-identical files.
- DVC records no durations, so the wall time per stage comes from
  `metrics/stage_times.json`, which `benchmarks/bench_stage_times.py` writes; the
  times of other profiles, `metrics/stage_times_<profile>.json` (such as
  `stage_times_smoke.json`), become more columns of the same table.
- `metrics/dpo_seeds.json` (optional) holds the curriculum and shuffled pass@1 curves
  of several seeds, `{"base_model_digest": "...", "seeds": [{"seed": 0, "curriculum":
  [{"step": 0, "pass@1": 0.4}, ...], "shuffled": [...]}, ...]}`: each seed's curves are
  those of its `dpo_compare.json`. With it the curve plot shows the mean over seeds and
  a percentile-bootstrap band.
- `metrics/ksweep.json`, `metrics/lintseq_seeds.json` and `metrics/mixture.json`
  (optional) are the aggregates `codealign ksweep`, `codealign lintseq-seeds` and
  `codealign mixture` write from DVC experiments; they are not stage outs, so after
  writing one refresh the report with `dvc repro -f -s report`.
- `results/findings.md` (optional, beside `metrics/`) is the claims table `codealign
  findings` writes from the run records; the report leads with it. Like the sweep
  aggregates it is not a stage out: refresh the report with `dvc repro -f -s report`.
- An aggregate records the base model its runs started from. When that is not this
  pipeline's base model (`base_model_eval.json`'s `model_digest`): another profile,
  such as `params/full.yaml`, or an older run, its section says so, and its seeds are
  not drawn into this run's curves.

One module per section (`findings` first, then `dataset`, `dedup`, `clusters`, `models`,
`ksweep`, `dpo`, `lintseq`, `mixture`, `curves`, `timing`), what they share in `common`,
the whole report in `render`, and the generated parts of the docs (the README's results
block and the pipeline diagram) in `docs`.
"""

from codealign.params.report import ReportParams
from codealign.report.common import Context, need, table
from codealign.report.dpo import read_seed_curves, seed_band
from codealign.report.render import render_report, write_report
from codealign.report.timing import stage_times

__all__ = [
    "Context",
    "ReportParams",
    "need",
    "read_seed_curves",
    "render_report",
    "seed_band",
    "stage_times",
    "table",
    "write_report",
]
