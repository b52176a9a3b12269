"""The tiny world: a deterministic, seeded generator of small Python tasks and English text.

One master seed makes everything. `build_world(seed, ...)` returns four task splits:

- `train`: tasks whose code goes into the pretraining corpus and the seed sets S1/S2;
- `pool`: the DPO prompt pool (never seen in pretraining or SFT);
- `dev`: `tinydev`, the held-out set hyperparameters are chosen on;
- `eval`: `tinyeval`, the held-out benchmark, read only by the final evaluation.

A task's identity is what it computes, never its names: its *semantic key* is the
template and the constants it uses, and its *function key* is a hash of what that body
returns on fixed probe inputs, so that two templates computing the same function share
it. Splits are decided on the function key; constant-free templates (one function each,
whatever the names) are train-only, so a dev or eval task's function never appears
under any name in train or the pool. Disjoint by check: `World.check_disjoint()`
compares function keys and hashes of the normalised prompt text, and the tests call it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import random
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from codealign.tinyworld.templates import ARG_NAMES, TEMPLATE_BY_NAME, TEMPLATES, Template

SPLITS = ("train", "pool", "dev", "eval")
HELD_OUT = ("dev", "eval")
PREFIX = {"train": "tinytrain", "pool": "tinypool", "dev": "tinydev", "eval": "tinyeval"}
SIZE_KEY = {"train": "n_train", "pool": "n_pool", "dev": "n_dev", "eval": "n_eval"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One tiny-world task; `prompt + canonical_solution` is the whole function."""

    task_id: str
    template: str
    family: str
    level: str
    title: str
    instruction: str
    prompt: str
    entry_point: str
    canonical_solution: str
    tests: tuple[str, ...]
    keywords: tuple[str, ...]
    split: str
    semantic: str = ""  # `semantic_key`: template and the constants it uses
    function: str = ""  # `function_key`: what it computes (probe outputs)

    @property
    def code(self) -> str:
        return self.prompt + self.canonical_solution

    def to_problem(self) -> dict:
        """The task as a HumanEval-format record (plus the tiny world's own fields)."""
        check = "def check(candidate):\n" + "".join(
            "    " + t.replace(f"assert {self.entry_point}(", "assert candidate(", 1) + "\n"
            for t in self.tests
        )
        return {
            "task_id": self.task_id,
            "prompt": self.prompt,
            "canonical_solution": self.canonical_solution,
            "test": check,
            "entry_point": self.entry_point,
            "tests": list(self.tests),
            "instruction": self.instruction,
            "keywords": list(self.keywords),
            "family": self.family,
            "level": self.level,
            "title": self.title,
        }

    def to_sft(self, source: str) -> dict:
        """The task as an SFT record: question in English, code the whole function."""
        return {
            "id": self.task_id,
            "question": self.instruction,
            "code": self.code,
            "keywords": list(self.keywords),
            "source": source,
            "difficulty": self.level,
            "tests": list(self.tests),
        }


def normalise(text: str) -> str:
    """Whitespace-insensitive, case-insensitive form of a text, for overlap checks."""
    return re.sub(r"\s+", " ", text).strip().lower()


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def _stable_unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts` (not Python's salted hash)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _function_name(template: Template, constants: dict, rng: random.Random) -> str:
    stem = rng.choice((template.name, template.name, "solve", "compute", "task"))
    numbers = [str(v) for v in constants.values() if isinstance(v, int)]
    return stem + ("_" + "_".join(numbers) if numbers and rng.random() < 0.7 else "")


NAMINGS = ("varied", "plain")


def instantiate(
    template: Template, constants: dict, rng: random.Random, split: str, names: str = "varied"
) -> Task:
    """Fill `template` with `constants` and surface names; compute the tests.

    `names: varied` draws the function name (template name, solve, compute or task, maybe
    with the constants) and argument names at random; `plain` names the function after
    its template and each argument after its role (x, xs, s, ...), which leaves a task's
    identity as it was and spares a very small model the copying of names.
    """
    args: dict[str, str] = {}
    for role in template.params:
        choices = [n for n in ARG_NAMES[role] if n not in args.values()]
        args[role] = role if names == "plain" else rng.choice(choices)
    fields = {**constants, **args}
    name = template.name if names == "plain" else _function_name(template, constants, rng)
    doc = template.docstring.format(**fields)
    body = template.body.format(**fields)
    prompt = f'def {name}({", ".join(args.values())}):\n    """{doc}"""\n'
    solution = f"    {body}\n"
    namespace: dict = {}
    exec(prompt + solution, namespace)  # our own generated code, never model output
    function = namespace[name]
    tests: list[str] = []
    seen: set[str] = set()
    want = 3 + (rng.random() < 0.5) + (rng.random() < 0.5)
    for _ in range(40):
        inputs = template.inputs(rng)
        call = f"{name}({', '.join(map(repr, inputs))})"
        if call in seen:
            continue
        seen.add(call)
        tests.append(f"assert {call} == {function(*inputs)!r}")
        if len(tests) == want:
            break
    const_text = ", ".join(f"{k}={v}" for k, v in used_constants(template, constants))
    title = template.title + (f" ({const_text})" if const_text else "")
    instruction = f"Write a function {name}({', '.join(args.values())}) that " + (
        doc[0].lower() + doc[1:]
    ).replace("return ", "returns ", 1)
    return Task(
        task_id="",
        template=template.name,
        family=template.family,
        level=template.level,
        title=title,
        instruction=instruction,
        prompt=prompt,
        entry_point=name,
        canonical_solution=solution,
        tests=tuple(tests),
        keywords=template.keywords,
        split=split,
        semantic=semantic_key(template, constants),
        function=function_key(template, constants),
    )


# --------------------------------------------------------------------------- keys

# What a task computes is found by running it: every template's canonical body, with the
# constants filled in, on fixed probe inputs of its argument kinds. Two (template,
# constants) pairs that agree on every probe are one function (`mul_add c=4 d=8` is
# `add_mul c=2 d=4`; `is_multiple c=2` is `is_even`), so the split never hands the same
# function to two sides under two templates either.
ROLE_KIND = {"x": "int", "a": "int", "b": "int", "n": "int", "xs": "list", "s": "str"}
_INT_PROBES = tuple((v,) for v in range(-25, 46))
_PAIR_PROBES = tuple((a, b) for a in (-7, -1, 0, 2, 9, 30) for b in (-3, 0, 1, 5, 12, 30))
_LIST_PROBES = tuple(
    ([*v],)
    for v in ((), *((i,) for i in range(-10, 32)), (1, 2, 3), (-5, 7, 12, 30), (4, 4, 9, -1, 0, 25))
)
_STR_PROBES = tuple(
    (v,) for v in ("", *"abcdeilmnorst", "ab", "tree", "moon", "abcdeilm", "racecar", "sssss")
)
PROBES = {("int",): _INT_PROBES, ("int", "int"): _PAIR_PROBES, ("list",): _LIST_PROBES,
          ("str",): _STR_PROBES}  # fmt: skip
# Draws of each template's constants that make the catalogue of held-out candidates.
CATALOGUE_DRAWS = 3000


def used_constants(template: Template, constants: dict) -> tuple[tuple[str, object], ...]:
    """The constants the template's docstring or body actually uses, sorted by name
    (`str_suffix` draws a second word it never uses: it must not split one function)."""
    fields = {
        name
        for text in (template.docstring, template.body)
        for _, name, _, _ in string.Formatter().parse(text)
        if name
    }
    return tuple(sorted((k, v) for k, v in constants.items() if k in fields))


def semantic_key(template: Template, constants: dict) -> str:
    """`template|constant=value,...`: what a task computes, whatever its names."""
    used = used_constants(template, constants)
    return template.name + "|" + ",".join(f"{k}={v!r}" for k, v in used)


@functools.cache
def _fingerprint(template: Template, used: tuple[tuple[str, object], ...]) -> str:
    args = {role: f"arg{i}" for i, role in enumerate(template.params)}
    body = template.body.format(**dict(used), **args)
    namespace: dict = {}
    exec(f"def f({', '.join(args.values())}):\n    {body}\n", namespace)  # our own templates
    kinds = tuple(ROLE_KIND[role] for role in template.params)
    outputs = []
    for inputs in PROBES[kinds]:
        try:
            outputs.append(repr(namespace["f"](*copy.deepcopy(inputs))))
        except Exception as error:  # part of the behaviour: list_max([]) raises
            outputs.append("!" + type(error).__name__)
    return hashlib.sha256(repr((kinds, outputs)).encode()).hexdigest()[:16]


def function_key(template: Template, constants: dict) -> str:
    """The function a (template, constants) pair computes: a hash of its outputs on the
    probe inputs. Equal semantic keys give equal function keys; names never enter."""
    return _fingerprint(template, used_constants(template, constants))


def split_of(seed: int, key: str, shares: dict[str, float]) -> str:
    """The split of function `key`: eval, dev, pool by `shares`, the rest train."""
    u = _stable_unit(seed, key)
    edge = 0.0
    for split in ("eval", "dev", "pool"):
        edge += shares[split]
        if u < edge:
            return split
    return "train"


@dataclass(frozen=True)
class Candidate:
    template: Template
    constants: dict
    key: str  # function key


@functools.cache
def _code_key(template: Template, used: tuple[tuple[str, object], ...]) -> str:
    from codealign.curation.dedup import ast_keys

    args = ", ".join(template.params)
    body = template.body.format(**dict(used), **{role: role for role in template.params})
    (key,) = ast_keys(f"def f({args}):\n    {body}\n")
    return key


def code_key(template: Template, constants: dict) -> str:
    """The AST key (`codealign.curation.dedup.ast_keys`) of the filled template: what
    decontamination compares. It can join two functions (`n * 5` on numbers and `s * 5`
    on strings look alike), so the split keeps such functions on one side."""
    return _code_key(template, used_constants(template, constants))


class Identities:
    """Union-find over function keys and AST keys: a task's *identity* is the class of
    everything that equals it by either key, named by its least member. The split is
    decided per identity, so no held-out task has a twin by either key on another side."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.train_only: set[str] = set()

    def find(self, key: str) -> str:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        return root

    def union(self, a: str, b: str) -> None:
        self.parent.setdefault(a, a)
        self.parent.setdefault(b, b)
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            low, high = sorted((ra, rb))
            self.parent[high] = low

    def add(self, template: Template, constants: dict) -> str:
        key = function_key(template, constants)
        self.union(key, "ast:" + code_key(template, constants))
        return key

    def of(self, template: Template, constants: dict) -> str:
        """The identity of a (template, constants) pair, without adding to the classes."""
        key = function_key(template, constants)
        if key in self.parent:
            return self.find(key)
        code = "ast:" + code_key(template, constants)
        return self.find(code) if code in self.parent else key


def catalogue(templates: Iterable[Template]) -> tuple[dict[str, Candidate], Identities]:
    """Every function the templates with constants make (one representative each, the
    least semantic key), and the identities of all functions, those of constant-free
    templates (and everything equal to them by either key) marked train-only."""
    rng = random.Random("tinyworld-catalogue")  # the function space does not depend on seed
    functions: dict[str, Candidate] = {}
    identities = Identities()
    constant_free: set[str] = set()
    for template in templates:
        if not used_constants(template, template.constants(random.Random(0))):
            constant_free.add(identities.add(template, {}))
            continue
        for _ in range(CATALOGUE_DRAWS):
            constants = template.constants(rng)
            key = identities.add(template, constants)
            known = functions.get(key)
            if known is None or semantic_key(template, constants) < semantic_key(
                known.template, known.constants
            ):
                functions[key] = Candidate(template, constants, key)
    for key in constant_free:
        functions.pop(key, None)
    identities.train_only = {identities.find(key) for key in constant_free}
    return functions, identities


@dataclass
class World:
    seed: int
    tasks: dict[str, list[Task]] = field(default_factory=dict)
    # Held-out sets (eval, dev) hold each function once; what they miss of their request.
    shortfall: dict[str, int] = field(default_factory=dict)

    @property
    def train(self) -> list[Task]:
        return self.tasks["train"]

    @property
    def pool(self) -> list[Task]:
        return self.tasks["pool"]

    @property
    def dev(self) -> list[Task]:
        return self.tasks["dev"]

    @property
    def eval(self) -> list[Task]:
        return self.tasks["eval"]

    def functions(self, split: str) -> set[str]:
        return {t.function for t in self.tasks[split]}

    def check_disjoint(self) -> None:
        """Raise AssertionError if two splits share a normalised prompt or instruction, or
        a held-out (dev, eval) function appears in another split under any name."""
        seen: dict[str, str] = {}
        for split in SPLITS:
            for task in self.tasks[split]:
                for text in (task.prompt, task.instruction):
                    digest = text_hash(text)
                    other = seen.setdefault(digest, split)
                    if other != split:
                        raise AssertionError(f"{task.task_id} ({split}) repeats a {other} task")
        for held in HELD_OUT:
            for split in SPLITS:
                if split == held:
                    continue
                shared = self.functions(held) & self.functions(split)
                if shared:
                    raise AssertionError(f"{len(shared)} {held} functions also appear in {split}")


def set_counts(tasks: Sequence[Task]) -> dict[str, int]:
    """Tasks and distinct functions of a set (what its noise depends on)."""
    return {"tasks": len(tasks), "functions": len({t.function for t in tasks})}


def _round_robin(candidates: list[Candidate], seed: int) -> list[Candidate]:
    """Candidates in an order that spreads over templates: the first of each template
    (templates in a seeded order), then the second of each, and so on."""
    by_template: dict[str, list[Candidate]] = {}
    for c in sorted(candidates, key=lambda c: _stable_unit(seed, "order", c.key)):
        by_template.setdefault(c.template.name, []).append(c)
    names = sorted(by_template, key=lambda name: _stable_unit(seed, "template", name))
    out = []
    for rank in range(max((len(v) for v in by_template.values()), default=0)):
        out += [by_template[name][rank] for name in names if rank < len(by_template[name])]
    return out


def build_world(
    seed: int,
    n_train: int,
    n_pool: int,
    n_eval: int,
    n_dev: int = 0,
    eval_share: float = 0.12,
    dev_share: float = 0.12,
    pool_share: float = 0.18,
    templates: Iterable[Template] = TEMPLATES,
    names: str = "varied",
) -> World:
    """Generate the four splits, deterministically from `seed`.

    Functions (see `function_key`) are split by a seeded hash: `eval_share` of them to
    tinyeval, `dev_share` to tinydev, `pool_share` to the pool, the rest, and every
    function of a constant-free template, to train. tinyeval and tinydev hold each of
    their functions once, under fresh names, so `n_eval` and `n_dev` are maxima: a set
    with fewer functions than asked is left short, logged and counted in
    `World.shortfall`. train and pool are filled by drawing templates and constants and
    keeping the draws of their functions (a function may recur there under other names);
    a world that cannot fill them raises ValueError. `names` is `instantiate`'s.
    """
    if names not in NAMINGS:
        raise ValueError(f"names must be one of {', '.join(NAMINGS)}, got {names!r}")
    templates = tuple(templates)
    rng = random.Random(seed)
    shares = {"eval": eval_share, "dev": dev_share, "pool": pool_share}
    functions, identities = catalogue(templates)

    def split(identity: str) -> str:
        if identity in identities.train_only:
            return "train"
        return split_of(seed, identity, shares)

    tasks: dict[str, list[Task]] = {s: [] for s in SPLITS}
    seen_text: set[str] = set()

    def add(task: Task, where: str) -> bool:
        digest = text_hash(task.prompt)
        if digest in seen_text:
            return False
        seen_text.add(digest)
        number = len(tasks[where])
        tasks[where].append(
            Task(**{**task.__dict__, "task_id": f"{PREFIX[where]}/{number}", "split": where})
        )
        return True

    shortfall: dict[str, int] = {}
    for held, want in (("eval", n_eval), ("dev", n_dev)):
        mine = [c for c in functions.values() if split(identities.find(c.key)) == held]
        for candidate in _round_robin(mine, seed):
            if len(tasks[held]) >= want:
                break
            for _ in range(20):  # fresh names until the prompt text is new
                task = instantiate(candidate.template, candidate.constants, rng, "", names)
                if add(task, held):
                    break
        if len(tasks[held]) < want:
            shortfall[held] = want - len(tasks[held])
            log.warning(
                "%s holds %d distinct functions, %d short of data.%s = %d "
                "(held-out sets never repeat a function)",
                PREFIX[held], len(tasks[held]), shortfall[held], SIZE_KEY[held], want,
            )  # fmt: skip

    want = {"train": n_train, "pool": n_pool}
    attempts = 0
    limit = 200 * sum(want.values()) + 10_000
    while any(len(tasks[s]) < want[s] for s in want):
        attempts += 1
        if attempts > limit:
            short = {s: want[s] - len(tasks[s]) for s in want if len(tasks[s]) < want[s]}
            raise ValueError(f"the tiny world cannot make enough distinct tasks: short by {short}")
        template = rng.choice(templates)
        constants = template.constants(rng)
        where = split(identities.of(template, constants))
        if where not in want or len(tasks[where]) >= want[where]:
            continue
        add(instantiate(template, constants, rng, "", names), where)
    world = World(seed=seed, tasks=tasks, shortfall=shortfall)
    world.check_disjoint()
    return world


def compose(
    keywords: Iterable[str], rng: random.Random, exclude: set[str] | None = None
) -> Task | None:
    """A new task that expresses as many of `keywords` as one template can, or None.

    The synthetic-data backend of the tiny world answers keyword requests with this:
    it picks the template sharing the most keywords with the request (ties at random),
    and refuses (returns None) when no template shares at least two, or one when the
    request has a single keyword. `exclude` holds normalised-text hashes not to repeat.
    """
    wanted = set(keywords)
    need = 1 if len(wanted) <= 1 else 2
    scored = [(len(wanted & set(t.keywords)), t) for t in TEMPLATES]
    best = max(score for score, _ in scored)
    if best < need:
        return None
    candidates = [t for score, t in scored if score == best]
    for _ in range(20):
        template = rng.choice(candidates)
        task = instantiate(template, template.constants(rng), rng, split="synthetic")
        if exclude is None or text_hash(task.prompt) not in exclude:
            return task
    return None


def template_of(task: Task) -> Template:
    return TEMPLATE_BY_NAME[task.template]
