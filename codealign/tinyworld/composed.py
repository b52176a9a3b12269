"""Longer tiny-world programs: several template bodies chained into one function.

The tiny world's tasks are one statement long (`return x + 3`), too short for LintSeq:
a program of a signature, a docstring and one line has one or two edits to sample. A
*composed* program chains `steps` templates, each reading what the previous one made,
through intermediate variables:

    def solve(x):
        \"\"\"Let v1 be x plus 3. Let v2 be v1 times 4. Return v2 minus 5.\"\"\"
        v1 = x + 3
        v2 = v1 * 4
        return v2 - 5

That is the `chain` shape: every step but the last is a one-line template (`return
EXPR`, written `vN = EXPR`) whose input kind (int, list, str) is what the step before
returns; the last may be any template of one argument, its own `if`/loop body included.
Deleting one line of a chain breaks every line after it, so LintSeq deletes the tail in
one go and a chain has few edits. The `parallel` shape feeds every part the argument and
returns the list of their values (`v1 = x + 3`, `v2 = x * 4`, `return [v1, v2]`): its
lines are independent, so it has about half its lines as edits. The first part draws
the test inputs; expected values come from running the composed function, so the tests
are right by construction, as `instantiate`'s are.

**Held out.** A composed program's parts come from one side of the world's split
(`codealign.tinyworld.world`): training programs only from functions whose identity is
`train`, evaluation tasks only from `eval` functions (tinyeval's), so no part of an
evaluation task is ever trained on. The composition as a whole is then compared too:
an evaluation task whose AST key (`codealign.curation.dedup.ast_keys`, names
normalised) or function key (outputs on the world's probe inputs) equals a training
program's is dropped, so no evaluation task has a renamed twin on the training side.
"""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from codealign.tinyworld.templates import ARG_NAMES, TEMPLATES, Template
from codealign.tinyworld.world import (
    PROBES,
    ROLE_KIND,
    Task,
    catalogue,
    semantic_key,
    split_of,
)

# The world's split shares (build_world's defaults): which side a part's identity is on.
SHARES = {"eval": 0.12, "dev": 0.12, "pool": 0.18}
PREFIX = "lintseq_composed"
SHAPES = ("chain", "parallel")
CHAINABLE = ("int", "list", "str")  # what a chain's inner part may return
MAX_REPR = 200  # a test whose expected value prints longer is not drawn
ATTEMPTS = 200  # draws per wanted program before giving up


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", list: "list", str: "str"}.get(type(value), type(value).__name__)


def _one_line(template: Template) -> bool:
    return "\n" not in template.body and template.body.startswith("return ")


def _output_kind(template: Template) -> str:
    """What the template returns, found by running it on one input."""
    (role,) = template.params
    rng = random.Random(0)
    constants = template.constants(rng)
    namespace: dict = {}
    body = template.body.format(**constants, **{role: "arg"})
    exec(f"def f(arg):\n    {body}\n", namespace)  # our own templates
    return _kind(namespace["f"](*template.inputs(rng)))


@dataclass(frozen=True)
class Part:
    template: Template
    constants: dict
    kind_in: str
    kind_out: str


@dataclass(frozen=True)
class Composed:
    """One composed program: its parts, source and keys."""

    parts: tuple[Part, ...]
    task: Task
    ast_key: str
    function_key: str


class Composer:
    """Draws composed programs of `steps` parts from one side of the world's split."""

    def __init__(self, world_seed: int, steps: int, shape: str = "chain") -> None:
        if steps < 2:
            raise ValueError(f"a composed program joins at least 2 templates, got {steps}")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
        self.steps = steps
        self.shape = shape
        self.world_seed = world_seed
        functions, self.identities = catalogue(TEMPLATES)
        self.single = [t for t in TEMPLATES if len(t.params) == 1]
        self.kind_out = {t.name: _output_kind(t) for t in self.single}
        # Held-out candidates by template: the catalogue's functions of each side.
        self.held: dict[str, dict[str, list[dict]]] = {"eval": {}, "dev": {}, "pool": {}}
        for candidate in functions.values():
            side = self.side(candidate.template, candidate.constants)
            if side in self.held and len(candidate.template.params) == 1:
                self.held[side].setdefault(candidate.template.name, []).append(candidate.constants)

    def side(self, template: Template, constants: dict) -> str:
        identity = self.identities.of(template, constants)
        identity = self.identities.find(identity)
        if identity in self.identities.train_only:
            return "train"
        return split_of(self.world_seed, identity, SHARES)

    def _constants(self, template: Template, side: str, rng: random.Random) -> dict | None:
        if side != "train":
            pool = self.held[side].get(template.name)
            return copy.deepcopy(rng.choice(pool)) if pool else None
        for _ in range(20):
            constants = template.constants(rng)
            if self.side(template, constants) == "train":
                return constants
        return None

    def _parts(self, side: str, rng: random.Random) -> tuple[Part, ...] | None:
        parts: list[Part] = []
        kind = None
        for step in range(self.steps):
            last = step == self.steps - 1 and self.shape == "chain"
            if parts and self.shape == "parallel":
                kind = parts[0].kind_in
            options = [
                t
                for t in self.single
                if (last or _one_line(t))
                and (kind is None or (ROLE_KIND[t.params[0]] == kind and t.params[0] != "n"))
                and (last or self.shape == "parallel" or self.kind_out[t.name] in CHAINABLE)
                and (side == "train" or t.name in self.held[side])
            ]
            if not options:
                return None
            template = rng.choice(options)
            constants = self._constants(template, side, rng)
            if constants is None:
                return None
            kind_in = ROLE_KIND[template.params[0]]
            kind = self.kind_out[template.name]
            parts.append(Part(template, constants, kind_in, kind))
        return tuple(parts)

    def draw(self, side: str, rng: random.Random) -> Composed | None:
        """One composed program from `side` (train or eval), or None where the draw fails
        (no chain of compatible parts, or fewer than 3 inputs it runs on)."""
        parts = self._parts(side, rng)
        if parts is None:
            return None
        first = parts[0].template
        (role,) = first.params
        arg = rng.choice(ARG_NAMES[role])
        name = rng.choice(("solve", "compute", "task", "combine")) + f"_{rng.randint(0, 99)}"
        source, doc = render(parts, arg, self.shape)
        prompt = f'def {name}({arg}):\n    """{doc}"""\n'
        namespace: dict = {}
        exec(prompt + source, namespace)  # our own generated code, never model output
        function = namespace[name]
        tests: list[str] = []
        seen: set[str] = set()
        want = 3 + (rng.random() < 0.5) + (rng.random() < 0.5)
        for _ in range(60):
            inputs = first.inputs(rng)
            call = f"{name}({', '.join(map(repr, inputs))})"
            if call in seen:
                continue
            seen.add(call)
            try:
                expected = repr(function(*copy.deepcopy(inputs)))
            except Exception:  # an input this chain does not take (max of an empty list)
                continue
            if len(expected) > MAX_REPR:
                continue
            tests.append(f"assert {call} == {expected}")
            if len(tests) == want:
                break
        if len(tests) < 3:
            return None
        semantic = " + ".join(semantic_key(p.template, p.constants) for p in parts)
        names = " then ".join(p.template.title.lower() for p in parts)
        task = Task(
            task_id="",
            template="+".join(p.template.name for p in parts),
            family="composed",
            level="hard",
            title=names[0].upper() + names[1:],
            instruction=f"Write a function {name}({arg}). {doc}",
            prompt=prompt,
            entry_point=name,
            canonical_solution=source,
            tests=tuple(tests),
            keywords=tuple(dict.fromkeys(k for p in parts for k in p.template.keywords)),
            split=side,
            semantic=semantic,
            function=composed_function_key(parts, self.shape),
        )
        return Composed(parts, task, composed_ast_key(source, role), task.function)


def _as_value(part: Part, current: str) -> tuple[str, str]:
    """A one-line part as an expression and a noun phrase over `current`."""
    (role,) = part.template.params
    fields = {**part.constants, role: current}
    body = part.template.body.format(**fields).removeprefix("return ")
    doc = part.template.docstring.format(**fields).removeprefix("Return ").rstrip(".")
    return body, doc


def render(parts: Sequence[Part], arg: str, shape: str = "chain") -> tuple[str, str]:
    """The body (indented, newline-terminated) and docstring of the parts read from
    `arg`: a `chain` feeds each part the variable before it and returns the last part;
    `parallel` feeds every part the argument and returns the list of their values."""
    lines, sentences = [], []
    current = arg
    for i, part in enumerate(parts):
        if shape == "chain" and i == len(parts) - 1:
            (role,) = part.template.params
            fields = {**part.constants, role: current}
            lines.append(f"    {part.template.body.format(**fields)}\n")
            sentences.append(part.template.docstring.format(**fields))
            break
        var = f"v{i + 1}"
        body, doc = _as_value(part, current)
        lines.append(f"    {var} = {body}\n")
        sentences.append(f"Let {var} be {doc}.")
        if shape == "chain":
            current = var
    if shape == "parallel":
        names = ", ".join(f"v{i + 1}" for i in range(len(parts)))
        lines.append(f"    return [{names}]\n")
        sentences.append(f"Return the list [{names}].")
    return "".join(lines), " ".join(sentences)


def composed_ast_key(source: str, role: str) -> str:
    """The decontamination AST key of the body under fixed names (no docstring)."""
    from codealign.curation.dedup import ast_keys

    (key,) = ast_keys(f"def f({role}):\n{source}")
    return key


def composed_function_key(parts: Sequence[Part], shape: str = "chain") -> str:
    """A hash of the program's outputs (or exception types) on the world's probe inputs."""
    (role,) = parts[0].template.params
    source, _ = render(parts, "arg", shape)
    namespace: dict = {}
    exec(f"def f(arg):\n{source}", namespace)  # our own templates
    outputs = []
    for inputs in PROBES[(ROLE_KIND[role],)]:
        try:
            outputs.append(repr(namespace["f"](*copy.deepcopy(inputs))))
        except Exception as error:  # part of the behaviour
            outputs.append("!" + type(error).__name__)
    return hashlib.sha256(repr(outputs).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ComposedSets:
    train: list[Task]
    validation: list[Task]
    eval: list[Task]
    dropped_twins: int  # eval draws dropped for a training twin (AST or function key)
    shortfall: dict[str, int]


def compose_sets(
    world_seed: int,
    seed: int,
    steps: int,
    n_train: int,
    n_validation: int,
    n_eval: int,
    shape: str = "chain",
) -> ComposedSets:
    """Training and validation programs from train-side parts, evaluation tasks from
    tinyeval's; distinct prompts throughout, no evaluation task equal to a training or
    validation program by AST key or function key. Deterministic in (world_seed, seed)."""
    composer = Composer(world_seed, steps, shape)
    rng = random.Random(f"lintseq-compose|{seed}|{steps}|{shape}")
    seen_prompts: set[str] = set()
    shortfall: dict[str, int] = {}

    def fill(
        side: str, want: int, exclude: tuple[set[str], set[str]] | None
    ) -> tuple[list[Composed], int]:
        out: list[Composed] = []
        dropped = 0
        for _ in range(ATTEMPTS * max(want, 1)):
            if len(out) >= want:
                break
            drawn = composer.draw(side, rng)
            if drawn is None or drawn.task.prompt in seen_prompts:
                continue
            if exclude is not None and (
                drawn.ast_key in exclude[0] or drawn.function_key in exclude[1]
            ):
                dropped += 1
                continue
            seen_prompts.add(drawn.task.prompt)
            out.append(drawn)
        return out, dropped

    train, _ = fill("train", n_train + n_validation, None)
    trained_ast = {c.ast_key for c in train}
    trained_functions = {c.function_key for c in train}
    evaluation, dropped = fill("eval", n_eval, (trained_ast, trained_functions))
    for name, got, want in (
        ("train", len(train), n_train + n_validation),
        ("eval", len(evaluation), n_eval),
    ):
        if got < want:
            shortfall[name] = want - got

    def tasks(items: Sequence[Composed], split: str, start: int = 0) -> list[Task]:
        return [
            Task(**{**c.task.__dict__, "task_id": f"{PREFIX}_{split}/{start + i}", "split": split})
            for i, c in enumerate(items)
        ]

    return ComposedSets(
        train=tasks(train[:n_train], "train"),
        validation=tasks(train[n_train:], "validation"),
        eval=tasks(evaluation, "eval"),
        dropped_twins=dropped,
        shortfall=shortfall,
    )
