"""The tiny world: a deterministic, seeded generator of small Python tasks and English text.

One master seed makes everything. `build_world(seed, ...)` returns disjoint task splits:

- `train`: tasks whose code goes into the pretraining corpus and the seed sets S1/S2;
- `pool`: the DPO prompt pool (never seen in pretraining or SFT);
- `eval`: `tinyeval`, a held-out HumanEval-format benchmark.

Disjoint by construction: a task's split is decided by a hash of its *semantic key*
(template and constants; for templates without constants, template and surface names),
so a held-out task is a combination the model never saw, not a renamed copy. Disjoint by
check: `World.check_disjoint()` compares hashes of the normalised prompt text, and the
tests call it.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from codealign.tinyworld.templates import ARG_NAMES, TEMPLATE_BY_NAME, TEMPLATES, Template

SPLITS = ("train", "pool", "eval")


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


def instantiate(template: Template, constants: dict, rng: random.Random, split: str) -> Task:
    """Fill `template` with `constants` and random surface names; compute the tests."""
    args: dict[str, str] = {}
    for role in template.params:
        choices = [n for n in ARG_NAMES[role] if n not in args.values()]
        args[role] = rng.choice(choices)
    fields = {**constants, **args}
    name = _function_name(template, constants, rng)
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
    const_text = ", ".join(f"{k}={v}" for k, v in constants.items())
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
    )


def split_of(seed: int, key: str, eval_share: float, pool_share: float) -> str:
    u = _stable_unit(seed, key)
    if u < eval_share:
        return "eval"
    if u < eval_share + pool_share:
        return "pool"
    return "train"


def semantic_key(template: Template, constants: dict, task: Task | None = None) -> str:
    if constants:
        return f"{template.name}|{sorted(constants.items())}"
    assert task is not None
    return f"{template.name}|{task.prompt.splitlines()[0]}"


@dataclass
class World:
    seed: int
    tasks: dict[str, list[Task]] = field(default_factory=dict)

    @property
    def train(self) -> list[Task]:
        return self.tasks["train"]

    @property
    def pool(self) -> list[Task]:
        return self.tasks["pool"]

    @property
    def eval(self) -> list[Task]:
        return self.tasks["eval"]

    def check_disjoint(self) -> None:
        """Raise AssertionError if any two splits share a normalised prompt or instruction."""
        seen: dict[str, str] = {}
        for split in SPLITS:
            for task in self.tasks[split]:
                for text in (task.prompt, task.instruction):
                    digest = text_hash(text)
                    other = seen.setdefault(digest, split)
                    if other != split:
                        raise AssertionError(f"{task.task_id} ({split}) repeats a {other} task")


def build_world(
    seed: int,
    n_train: int,
    n_pool: int,
    n_eval: int,
    eval_share: float = 0.12,
    pool_share: float = 0.18,
    templates: Iterable[Template] = TEMPLATES,
) -> World:
    """Generate the three disjoint splits, deterministically from `seed`."""
    templates = tuple(templates)
    rng = random.Random(seed)
    want = {"train": n_train, "pool": n_pool, "eval": n_eval}
    tasks: dict[str, list[Task]] = {s: [] for s in SPLITS}
    seen_text: set[str] = set()
    attempts = 0
    limit = 200 * sum(want.values()) + 10_000
    while any(len(tasks[s]) < want[s] for s in SPLITS):
        attempts += 1
        if attempts > limit:
            short = {s: want[s] - len(tasks[s]) for s in SPLITS if len(tasks[s]) < want[s]}
            raise ValueError(f"the tiny world cannot make enough distinct tasks: short by {short}")
        template = rng.choice(templates)
        constants = template.constants(rng)
        task = instantiate(template, constants, rng, split="")
        split = split_of(seed, semantic_key(template, constants, task), eval_share, pool_share)
        if len(tasks[split]) >= want[split]:
            continue
        digest = text_hash(task.prompt)
        if digest in seen_text:
            continue
        seen_text.add(digest)
        number = len(tasks[split])
        task_id = {"train": "tinytrain", "pool": "tinypool", "eval": "tinyeval"}[split]
        tasks[split].append(
            Task(**{**task.__dict__, "task_id": f"{task_id}/{number}", "split": split})
        )
    world = World(seed=seed, tasks=tasks)
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
