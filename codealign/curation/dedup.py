"""Semantic deduplication, decontamination and the train/validation split of SFT records.

The curation order is fixed and every removal is logged with what it matched:

1. `duplicate_id`: a record whose `id` was already seen (the first one stays).
2. `contaminated_ngram`: the record shares at least `dedup.decontam_ngram_threshold` of an
   evaluation task's word n-grams (`decontam_ngram_size` words; lower-cased `\\w+` tokens of
   question + code against prompt + canonical solution, tests excluded). The score is the
   fraction of the *task's* n-grams found in the record, so a phrase that many tasks share
   ("write a function that takes a list of integers") cannot flag a record by itself.
3. `contaminated_ast`: a function of the record's code has the AST key of an evaluation
   task's function (`ast_keys`: docstrings and annotations dropped, the names the function
   binds renamed in order of first appearance, constants and free names such as builtins
   kept), so a renamed copy of a task is caught even when it is too short for the n-gram
   check and its English question embeds far from the task's code prompt.
4. `contaminated_embedding`: the cosine between the record's embedding and an evaluation
   task's exceeds `dedup.decontam_embed_threshold`.
5. `near_duplicate`: greedy, order-stable semantic dedup: walking the records in input
   order, a record is kept unless its cosine to some already *kept* record exceeds
   `dedup.threshold`; the log names the most similar kept record.

Contamination runs before dedup so that a contaminated record never stands in for
(and thereby removes) a clean near-duplicate of itself.

`greedy_dedup` is exact and works in chunks: memory is the embeddings, a buffer of the
kept ones, and one `chunk_size x block` similarity tile, whatever the number of items.
`approximate_dedup` applies the same greedy rule to the pairs an IVF-style join over
faiss k-means cells finds (for ~1M items, where the exact pass is quadratic); it needs
the optional `faiss-cpu` package. Both assume L2-normalised float32 rows, so the dot
product is the cosine. Embeddings of records and eval tasks are of `dedup.embed_field`
(the question by default, as the specialists cluster questions).
"""

from __future__ import annotations

import ast
import hashlib
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.io import iter_jsonl, require_fields
from codealign.lm.embedding import l2_normalize
from codealign.params.curation import EVAL_SETS, NAMED_DATASETS, DedupParams

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- records

SFT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": (str, int),
    "question": str,
    "code": str,
    "source": str,
}


def check_sft_record(record: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate one SFT record (`id, question, code, keywords, source`); return it."""
    require_fields(record, SFT_FIELDS, where)
    if not isinstance(record.get("keywords", []), list):
        raise CodealignError(f"{where}: field 'keywords' must be list")
    return record


def read_sft_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of an SFT JSONL file, validated; errors name `file:line`."""
    records = []
    for lineno, record in enumerate(iter_jsonl(path), start=1):
        records.append(check_sft_record(record, f"{path}:{lineno}"))
    return records


@dataclass(frozen=True)
class EvalTask:
    """One evaluation problem as decontamination sees it."""

    task_id: str
    question: str  # the natural-language side: HumanEval prompt or MBPP text
    code: str  # the reference solution ("" when unknown)
    source: str  # which eval set, e.g. tinyeval
    ast_keys: frozenset[str] = frozenset()  # of its reference function(s), see `ast_keys`


def eval_task_from_record(record: dict[str, Any], source: str, where: str) -> EvalTask:
    """Accept HumanEval problems (`prompt`), MBPP records (`text`, `code`), APPS problems
    (`description`) or SFT records."""
    if "prompt" in record:
        require_fields(record, {"task_id": (str, int), "prompt": str}, where)
        solution = str(record.get("canonical_solution") or "")
        keys = ast_keys(record["prompt"] + solution, only=record.get("entry_point"))
        return EvalTask(str(record["task_id"]), record["prompt"], solution, source, keys)
    if "text" in record:
        require_fields(record, {"task_id": (str, int), "text": str}, where)
        code = str(record.get("code", ""))
        return EvalTask(str(record["task_id"]), record["text"], code, source, ast_keys(code))
    if "description" in record:  # an APPS problem (no reference solution in the vendored file)
        require_fields(record, {"description": str}, where)
        tid = str(record.get("task_id", f"APPS/{record.get('id')}"))
        return EvalTask(tid, record["description"], "", source)
    if "question" in record:
        require_fields(record, {"id": (str, int), "question": str}, where)
        tid = str(record.get("task_id", record["id"]))
        code = str(record.get("code", ""))
        return EvalTask(tid, record["question"], code, source, ast_keys(code))
    raise CodealignError(
        f"{where}: an eval problem needs 'task_id' and 'prompt' (or 'text', 'description')"
    )


def read_eval_jsonl(path: str | Path, source: str | None = None) -> list[EvalTask]:
    """Eval problems from a HumanEval- or MBPP-format JSONL file; source defaults to its stem."""
    path = Path(path)
    name = source or path.name.split(".")[0]
    return [
        eval_task_from_record(record, name, f"{path}:{lineno}")
        for lineno, record in enumerate(iter_jsonl(path), start=1)
    ]


def load_named_dataset(name: str, raw_dir: str | Path) -> list[dict[str, Any]]:
    """SFT records of a vendored dataset: code_alpaca_2k, mbpp (all 974) or mbpp_train."""
    from codealign.curation import datasets

    if name == "code_alpaca_2k":
        records = datasets.load_code_alpaca(raw_dir)
    elif name == "mbpp":
        records = datasets.mbpp_to_sft(datasets.load_mbpp(raw_dir=raw_dir))
    elif name == "mbpp_train":
        records = datasets.mbpp_to_sft(datasets.load_mbpp("train", raw_dir=raw_dir))
    else:
        raise CodealignError(f"unknown dataset {name!r} (known: {', '.join(NAMED_DATASETS)})")
    return [check_sft_record(r, f"{name}: record {i}") for i, r in enumerate(records)]


def load_eval_set(name: str, raw_dir: str | Path) -> list[EvalTask]:
    """A vendored evaluation or dev set: humaneval, mbpp (the test split), mbpp_plus or
    mbpp_validation (the paper profile's dev set)."""
    from codealign.curation import datasets

    if name == "humaneval":
        records = datasets.load_humaneval()
    elif name == "mbpp":
        records = datasets.load_mbpp("test", raw_dir=raw_dir)
    elif name == "mbpp_validation":
        records = datasets.load_mbpp("validation", raw_dir=raw_dir)
    elif name == "mbpp_plus":
        records = datasets.load_mbpp_plus(raw_dir)
    else:
        raise CodealignError(f"unknown eval set {name!r} (known: {', '.join(EVAL_SETS)})")
    return [eval_task_from_record(r, name, f"{name}: record {i}") for i, r in enumerate(records)]


def gather_records(
    paths: Sequence[str | Path], datasets: Sequence[str], raw_dir: str | Path
) -> list[dict[str, Any]]:
    """SFT records of the input files, then of the named datasets, in that order."""
    records: list[dict[str, Any]] = []
    for path in paths:
        part = read_sft_jsonl(path)
        log.info("read %s: %d records", path, len(part))
        records += part
    for name in datasets:
        part = load_named_dataset(name, raw_dir)
        log.info("read dataset %s: %d records", name, len(part))
        records += part
    return records


def gather_eval_tasks(
    paths: Sequence[str | Path], eval_sets: Sequence[str], raw_dir: str | Path
) -> list[EvalTask]:
    """Eval problems of the given files and the named vendored eval sets."""
    tasks = [task for path in paths for task in read_eval_jsonl(path)]
    tasks += [task for name in eval_sets for task in load_eval_set(name, raw_dir)]
    log.info("decontaminating against %d eval tasks", len(tasks))
    return tasks


def embed_text(question: str, code: str, which: str) -> str:
    """The text embedded for a record or eval task under `dedup.embed_field`."""
    if which == "question":
        return question
    if which == "code":
        return code
    return f"{question}\n{code}"


# --------------------------------------------------------------------------- exact dedup


@dataclass
class DedupResult:
    """Kept indices in input order; for each dropped index the kept index it matched."""

    kept: np.ndarray
    matched: dict[int, tuple[int, float]] = field(default_factory=dict)

    @property
    def dropped(self) -> list[int]:
        return sorted(self.matched)


def greedy_dedup(
    embeddings: np.ndarray,
    threshold: float,
    chunk_size: int = 2048,
    kept_block: int = 8192,
    progress: bool = False,
) -> DedupResult:
    """Exact greedy, order-stable dedup of L2-normalised rows.

    Row i is kept iff cos(i, j) <= threshold for every kept j < i. Rows are handled in
    chunks of `chunk_size`: each chunk is compared with the kept rows of earlier chunks in
    tiles of `kept_block` columns, then resolved within itself in order. A dropped row
    reports its most similar kept row (ties: the earliest).
    """
    if not 0 < threshold <= 1:
        raise CodealignError(f"dedup.threshold must be a number in (0, 1], got {threshold!r}")
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {x.shape}")
    n, dim = x.shape
    # The kept rows are copied into one contiguous buffer so every tile is a plain GEMM.
    kept_vecs = np.empty((n, dim), dtype=np.float32)
    kept_idx = np.empty(n, dtype=np.int64)
    n_kept = 0
    matched: dict[int, tuple[int, float]] = {}

    from tqdm.auto import tqdm

    with tqdm(total=n, desc="dedup", unit="item", disable=not progress) as bar:
        for start in range(0, n, chunk_size):
            chunk = x[start : start + chunk_size]
            m = chunk.shape[0]
            best_sim = np.full(m, -np.inf, dtype=np.float32)
            best_pos = np.full(m, -1, dtype=np.int64)
            for kb in range(0, n_kept, kept_block):
                tile = chunk @ kept_vecs[kb : min(kb + kept_block, n_kept)].T
                hit_rows = np.nonzero((tile > threshold).any(axis=1))[0]
                if hit_rows.size:
                    arg = tile[hit_rows].argmax(axis=1)
                    sims = tile[hit_rows, arg]
                    better = sims > best_sim[hit_rows]
                    rows = hit_rows[better]
                    best_sim[rows] = sims[better]
                    best_pos[rows] = kb + arg[better]
            for row in np.nonzero(best_pos >= 0)[0]:
                matched[start + int(row)] = (int(kept_idx[best_pos[row]]), float(best_sim[row]))

            survivors = np.nonzero(best_pos < 0)[0]
            keep_in_chunk = _resolve_within(chunk[survivors], threshold)
            local_kept: list[int] = []
            for pos, row in enumerate(survivors):
                match = keep_in_chunk[pos]
                if match is None:
                    local_kept.append(int(row))
                else:
                    kept_row, sim = match
                    matched[start + int(row)] = (start + int(survivors[kept_row]), sim)
            rows = np.asarray(local_kept, dtype=np.int64)
            kept_vecs[n_kept : n_kept + rows.size] = chunk[rows]
            kept_idx[n_kept : n_kept + rows.size] = start + rows
            n_kept += rows.size
            bar.update(m)
    return DedupResult(kept=kept_idx[:n_kept].copy(), matched=matched)


def _resolve_within(rows: np.ndarray, threshold: float) -> list[tuple[int, float] | None]:
    """Greedy pass inside one chunk: None for kept rows, else (kept row, cosine)."""
    m = rows.shape[0]
    out: list[tuple[int, float] | None] = [None] * m
    if m < 2:
        return out
    sims = rows @ rows.T
    # Only earlier rows can remove a later one.
    above = np.tril(sims > threshold, k=-1)
    candidates = np.nonzero(above.any(axis=1))[0]
    if candidates.size == 0:
        return out
    kept = np.ones(m, dtype=bool)
    for i in candidates:
        earlier = np.nonzero(above[i] & kept)[0]
        if earlier.size:
            kept[i] = False
            best = earlier[np.argmax(sims[i, earlier])]
            out[i] = (int(best), float(sims[i, best]))
    return out


def brute_force_dedup(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """The reference: the greedy rule one row at a time against all kept rows."""
    x = np.asarray(embeddings, dtype=np.float32)
    kept: list[int] = []
    for i in range(x.shape[0]):
        if not kept or float(np.max(x[kept] @ x[i])) <= threshold:
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)


# --------------------------------------------------------------------------- approximate


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise CodealignError(
            "dedup.method 'approximate' needs faiss: pip install 'codealign[faiss]' "
            "(or faiss-cpu), or set dedup.method: exact"
        ) from None
    return faiss


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def default_nlist(n: int, nprobe: int) -> int:
    """Number of k-means cells that roughly minimises training + assignment + join cost.

    Per dimension: k-means ~ 600 * nlist^2 (10 iterations on 30 points a cell), assigning
    every row ~ 2 * n * nlist, and the join ~ 2 * nprobe * n^2 / nlist. About 900 cells
    for 200k rows and 2,600 for 1M at nprobe 16.
    """
    best = min(
        (600 * c * c + 2 * n * c + 2 * nprobe * n * n / c, c)
        for c in np.unique(np.geomspace(1, max(1, n // 30), 200).astype(int))
    )
    return int(best[1])


def approximate_pairs(
    embeddings: np.ndarray,
    threshold: float,
    nprobe: int = 16,
    nlist: int | None = None,
    seed: int = 0,
    query_block: int = 8192,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j < i, cosine) above `threshold`, found in an IVF-style cell join.

    faiss k-means splits the rows into `nlist` cells; each row lives in its nearest cell
    and probes its `nprobe` nearest ones, exactly as an IVF index would search it. Unlike
    a per-query index search, each cell is then joined with all rows that probe it in one
    matrix product, which runs at BLAS speed. Cosines are computed in full from the
    vectors, so every reported pair is real; only pairs whose earlier row lives in a cell
    the later one does not probe are missed.
    """
    faiss = _import_faiss()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = x.shape
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return empty, empty, np.zeros(0, dtype=np.float32)
    nlist = min(nlist or default_nlist(n, nprobe), n)
    nprobe = min(nprobe, nlist)
    # Cells need not be good clusters, only balanced and covering: 10 iterations on 30
    # points a cell keep training a small share of the run.
    kmeans = faiss.Kmeans(
        dim,
        nlist,
        niter=10,
        seed=seed,
        spherical=True,
        max_points_per_centroid=30,
        min_points_per_centroid=1,
        verbose=False,
    )
    train = x
    if n > 30 * nlist:
        train = x[np.sort(np.random.default_rng(seed).choice(n, 30 * nlist, replace=False))]
    kmeans.train(train)
    _, probes = kmeans.index.search(x, nprobe)
    home = probes[:, 0]
    by_home = np.argsort(home, kind="stable")
    home_bounds = np.searchsorted(home[by_home], np.arange(nlist + 1))
    flat_cell = probes.ravel()
    by_probe = np.argsort(flat_cell, kind="stable")
    probe_bounds = np.searchsorted(flat_cell[by_probe], np.arange(nlist + 1))
    flat_row = by_probe // nprobe  # row of each (row, probe) entry, grouped by cell

    found_i, found_j, found_s = [], [], []
    from tqdm.auto import tqdm

    for cell in tqdm(range(nlist), desc="cell join", disable=not progress):
        members = by_home[home_bounds[cell] : home_bounds[cell + 1]]
        if members.size == 0:
            continue
        member_vecs = x[members]
        queries = flat_row[probe_bounds[cell] : probe_bounds[cell + 1]]
        for start in range(0, queries.size, query_block):
            rows = queries[start : start + query_block]
            sims = x[rows] @ member_vecs.T
            qi, mj = np.nonzero(sims > threshold)
            i, j = rows[qi], members[mj]
            earlier = j < i
            found_i.append(i[earlier])
            found_j.append(j[earlier])
            found_s.append(sims[qi[earlier], mj[earlier]])
    if not found_i:
        return empty, empty, np.zeros(0, dtype=np.float32)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)


def greedy_from_pairs(
    n: int, later: np.ndarray, earlier: np.ndarray, sims: np.ndarray
) -> DedupResult:
    """The greedy rule over a list of above-threshold pairs (later > earlier).

    Row i is dropped iff some pair (i, j) has j kept; exact when the list holds every
    such pair. A dropped row names its most similar kept partner.
    """
    order = np.argsort(later, kind="stable")
    # Plain Python over lists: most rows have one or two partners, where numpy's
    # per-call overhead would dominate.
    rows, partners, scores = later[order].tolist(), earlier[order].tolist(), sims[order].tolist()
    alive = bytearray(b"\x01") * n
    matched: dict[int, tuple[int, float]] = {}
    pos, total = 0, len(rows)
    # Rows are settled in increasing order, so every partner is settled before its row.
    while pos < total:
        row, best, best_sim = rows[pos], -1, -math.inf
        while pos < total and rows[pos] == row:
            j, sim = partners[pos], scores[pos]
            if alive[j] and (sim > best_sim or (sim == best_sim and j < best)):
                best, best_sim = j, sim
            pos += 1
        if best >= 0:
            alive[row] = 0
            matched[row] = (best, best_sim)
    kept = np.frombuffer(bytes(alive), dtype=np.uint8).astype(bool)
    return DedupResult(kept=np.flatnonzero(kept), matched=matched)


def approximate_dedup(
    embeddings: np.ndarray,
    threshold: float,
    nprobe: int = 16,
    nlist: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> DedupResult:
    """Greedy order-stable dedup on the pairs `approximate_pairs` finds (needs faiss).

    Raise `nprobe` to trade time for recall of duplicate pairs.
    """
    if not 0 < threshold <= 1:
        raise CodealignError(f"dedup.threshold must be a number in (0, 1], got {threshold!r}")
    later, earlier, sims = approximate_pairs(
        embeddings, threshold, nprobe=nprobe, nlist=nlist, seed=seed, progress=progress
    )
    return greedy_from_pairs(len(embeddings), later, earlier, sims)


# --------------------------------------------------------------------------- decontamination

_WORD = re.compile(r"\w+")


def word_ngrams(text: str, n: int) -> set[int]:
    """Hashes of the text's lower-cased word n-grams (empty when it has fewer than n words)."""
    words = _WORD.findall(text.lower())
    # blake2b rather than hash(): stable across processes, so logs are reproducible.
    return {
        int.from_bytes(
            hashlib.blake2b(" ".join(words[i : i + n]).encode(), digest_size=8).digest(), "little"
        )
        for i in range(len(words) - n + 1)
    }


# --------------------------------------------------------------------------- AST key


class _Canonical(ast.NodeTransformer):
    """Drops docstrings and annotations and renames the names a function binds (its own
    name, arguments, assigned and loop names, nested definitions, imports) to v0, v1, ...
    in order of first appearance. Free names (builtins, globals), attributes and
    constants are kept: `sum(xs)` and `len(xs)` stay apart, `x + 3` and `x + 4` too."""

    def __init__(self, bound: set[str]):
        self.bound = bound
        self.names: dict[str, str] = {}

    def rename(self, name: str) -> str:
        if name not in self.bound:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def _body(self, node):
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]

    def visit_FunctionDef(self, node):
        node.name = self.rename(node.name)
        self._body(node)
        node.returns = None
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        node.body = [self.visit(stmt) for stmt in node.body]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        node.name = self.rename(node.name)
        self._body(node)
        return self.generic_visit(node)

    def visit_arg(self, node):
        node.arg = self.rename(node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node):
        node.id = self.rename(node.id)
        return node

    def visit_alias(self, node):
        if node.asname:
            node.asname = self.rename(node.asname)
        return node

    def visit_AnnAssign(self, node):
        node.annotation = ast.Constant(None)
        return self.generic_visit(node)


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.split(".")[0])
    return bound


def ast_key(node: ast.AST) -> str:
    """The AST key of one function (or module): equal for copies up to renaming."""
    import copy

    tree = copy.deepcopy(node)
    tree = _Canonical(_bound_names(tree)).visit(tree)
    dump = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return hashlib.blake2b(dump.encode(), digest_size=12).hexdigest()


def ast_keys(code: str, only: str | None = None) -> frozenset[str]:
    """AST keys of each top-level function of `code` (only the one named `only`, when
    given and present), or of the whole module when it defines none; empty when `code`
    does not parse."""
    try:
        with warnings.catch_warnings():  # `"\d"` in a dataset's code is its own business
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return frozenset()
    functions = [
        node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    if only is not None and any(f.name == only for f in functions):
        functions = [f for f in functions if f.name == only]
    if not functions:
        return frozenset({ast_key(tree)}) if tree.body else frozenset()
    return frozenset(ast_key(f) for f in functions)


def ast_twins(
    programs: Sequence[str], tasks: Sequence[EvalTask]
) -> dict[int, tuple[EvalTask, str]]:
    """Programs with a function equal, up to renaming, to an eval task's: index -> (the
    first such task, the shared key)."""
    by_key: dict[str, EvalTask] = {}
    for task in tasks:
        for key in task.ast_keys:
            by_key.setdefault(key, task)
    found: dict[int, tuple[EvalTask, str]] = {}
    if not by_key:
        return found
    for i, program in enumerate(programs):
        for key in sorted(ast_keys(program)):
            if key in by_key:
                found[i] = (by_key[key], key)
                break
    return found


def require_no_twins(programs: Sequence[str], tasks: Sequence[EvalTask], what: str) -> None:
    """Raise CodealignError naming the first program of `what` that is a renamed copy of
    an eval or dev task (for sets held out by construction, where a twin is a bug)."""
    twins = ast_twins(programs, tasks)
    if twins:
        i = min(twins)
        task, _ = twins[i]
        raise CodealignError(
            f"{what}: {len(twins)} programs are renamed copies of held-out tasks, the first "
            f"(#{i}) of {task.source} {task.task_id}"
        )


@dataclass(frozen=True)
class Contamination:
    """Why one record was judged contaminated."""

    index: int  # the record's position in the input
    reason: str  # contaminated_ngram | contaminated_ast | contaminated_embedding
    task: EvalTask
    score: float  # n-gram share of the task, cosine, or 1.0 (AST key)


def ast_contamination(codes: Sequence[str], tasks: Sequence[EvalTask]) -> dict[int, Contamination]:
    """Records whose code holds a renamed copy of some task's function (`ast_twins`)."""
    return {
        i: Contamination(i, "contaminated_ast", task, 1.0)
        for i, (task, _) in ast_twins(codes, tasks).items()
    }


def ngram_contamination(
    texts: Sequence[str], tasks: Sequence[EvalTask], n: int, threshold: float
) -> dict[int, Contamination]:
    """Records sharing >= `threshold` of some task's n-grams; keeps the best-matching task."""
    task_sizes = []
    inverted: dict[int, list[int]] = {}
    for t, task in enumerate(tasks):
        grams = word_ngrams(f"{task.question}\n{task.code}", n)
        task_sizes.append(len(grams))
        for g in grams:
            inverted.setdefault(g, []).append(t)
    found: dict[int, Contamination] = {}
    if not inverted:
        return found
    for i, text in enumerate(texts):
        shared: Counter[int] = Counter()
        for g in word_ngrams(text, n):
            for t in inverted.get(g, ()):
                shared[t] += 1
        if not shared:
            continue
        t, score = max(((t, c / task_sizes[t]) for t, c in shared.items()), key=lambda p: p[1])
        if score >= threshold:
            found[i] = Contamination(i, "contaminated_ngram", tasks[t], score)
    return found


def embedding_contamination(
    embeddings: np.ndarray,
    task_embeddings: np.ndarray,
    tasks: Sequence[EvalTask],
    threshold: float,
    chunk_size: int = 4096,
) -> dict[int, Contamination]:
    """Records whose cosine to some task exceeds `threshold`; keeps the closest task."""
    found: dict[int, Contamination] = {}
    if len(tasks) == 0 or embeddings.shape[0] == 0:
        return found
    for start in range(0, embeddings.shape[0], chunk_size):
        sims = embeddings[start : start + chunk_size] @ task_embeddings.T
        best = sims.argmax(axis=1)
        best_sim = sims[np.arange(sims.shape[0]), best]
        for row in np.nonzero(best_sim > threshold)[0]:
            i = start + int(row)
            found[i] = Contamination(
                i, "contaminated_embedding", tasks[int(best[row])], float(best_sim[row])
            )
    return found


# --------------------------------------------------------------------------- split


def split_validation(
    records: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded train/validation split, each part in input order.

    The validation set is the round(fraction * n) records with the smallest
    sha256(seed, id): a record's side depends only on its id and the seed, so adding
    records moves few others across (unlike a permutation of positions).
    """
    n = len(records)
    n_val = round(fraction * n)
    if fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    ranks = sorted(
        range(n),
        key=lambda i: hashlib.sha256(f"{seed}:{records[i]['id']}".encode()).digest(),
    )
    val = set(ranks[:n_val])
    train = [r for i, r in enumerate(records) if i not in val]
    validation = [r for i, r in enumerate(records) if i in val]
    return train, validation


# --------------------------------------------------------------------------- the stage


@dataclass
class Curated:
    """What the dedup stage writes."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    metrics: dict[str, Any]


def curate(
    records: Sequence[dict[str, Any]],
    tasks: Sequence[EvalTask],
    embed: Callable[[list[str]], np.ndarray],
    params: DedupParams,
    seed: int,
    progress: bool = True,
) -> Curated:
    """Drop duplicate ids, contaminated and near-duplicate records, then split.

    `embed` maps texts to L2-normalised rows (e.g. `Embedder.embed`). Removed records keep
    all their fields and gain `reason`, `score` and `matched_id`/`matched_source` (near
    duplicates, duplicate ids) or `matched_task_id`/`matched_eval_set` (contamination).
    """
    removed: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    unique: list[dict[str, Any]] = []
    for record in records:
        rid = str(record["id"])
        if rid in seen:
            first = seen[rid]
            removed.append(
                {
                    **record,
                    "reason": "duplicate_id",
                    "matched_id": first["id"],
                    "matched_source": first["source"],
                    "score": 1.0,
                }
            )
            continue
        seen[rid] = record
        unique.append(record)

    texts = [embed_text(r["question"], r["code"], params.embed_field) for r in unique]
    ngram_hits = ngram_contamination(
        [f"{r['question']}\n{r['code']}" for r in unique],
        tasks,
        params.decontam_ngram_size,
        params.decontam_ngram_threshold,
    )
    ast_hits = ast_contamination([r["code"] for r in unique], tasks)
    # Cosines need unit rows even when embed.normalize is off (raw vectors for clustering).
    vectors = l2_normalize(embed(texts)) if unique else np.zeros((0, 1), np.float32)
    embed_hits: dict[int, Contamination] = {}
    if tasks and unique:
        task_texts = [embed_text(t.question, t.code, params.embed_field) for t in tasks]
        task_vectors = l2_normalize(embed(task_texts))
        embed_hits = embedding_contamination(
            vectors, task_vectors, tasks, params.decontam_embed_threshold
        )
    clean: list[int] = []
    for i, record in enumerate(unique):
        hit = ngram_hits.get(i) or ast_hits.get(i) or embed_hits.get(i)
        if hit is None:
            clean.append(i)
            continue
        removed.append(
            {
                **record,
                "reason": hit.reason,
                "matched_task_id": hit.task.task_id,
                "matched_eval_set": hit.task.source,
                "score": round(hit.score, 6),
            }
        )

    clean_vecs = vectors[clean]
    if params.method == "approximate":
        result = approximate_dedup(
            clean_vecs,
            params.threshold,
            params.approx_nprobe,
            params.approx_nlist,
            seed=seed,
            progress=progress,
        )
    else:
        result = greedy_dedup(clean_vecs, params.threshold, params.chunk_size, progress=progress)
    for pos, (kept_pos, sim) in sorted(result.matched.items()):
        record, match = unique[clean[pos]], unique[clean[kept_pos]]
        removed.append(
            {
                **record,
                "reason": "near_duplicate",
                "matched_id": match["id"],
                "matched_source": match["source"],
                "score": round(sim, 6),
            }
        )
    kept = [unique[clean[int(p)]] for p in result.kept]
    train, validation = split_validation(kept, params.validation_fraction, seed)
    metrics = dedup_metrics(records, kept, train, validation, removed)
    return Curated(train, validation, removed, metrics)


def _count_sources(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(r["source"]) for r in records).items()))


def dedup_metrics(
    before: Sequence[dict[str, Any]],
    kept: Sequence[dict[str, Any]],
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    removed: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Counts per source before/after and removals per reason (all numbers, for dvc metrics)."""
    reasons = Counter(r["reason"] for r in removed)
    return {
        "records_before": len(before),
        "records_after": len(kept),
        "train": len(train),
        "validation": len(validation),
        "before": _count_sources(before),
        "after": _count_sources(kept),
        "removed": {
            reason: reasons.get(reason, 0)
            for reason in (
                "duplicate_id",
                "contaminated_ngram",
                "contaminated_ast",
                "contaminated_embedding",
                "near_duplicate",
            )
        },
    }
