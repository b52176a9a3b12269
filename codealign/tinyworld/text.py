"""English for the tiny world: short stories, facts, and instruction/answer pairs.

The pretraining corpus mixes this text with tiny-world code; `code_share` is the code
fraction of the corpus by characters. The instruction/answer pairs have one right
answer each, so a model's English instruction following can be checked exactly; an
`InstructionSplit` keeps a salted share of each instruction kind's arguments out of the
English written for a corpus, so that it can be checked on instructions the corpus
never holds (`heldout_instruction`).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from functools import cached_property

from codealign.tinyworld.templates import WORDS

NAMES = ("Tom", "Mia", "Sam", "Ann", "Ben", "Lily", "Max", "Zoe", "Leo", "Ivy")
THINGS = ("apples", "books", "stars", "cups", "stones", "coins", "hats", "balls")
ADJECTIVES = ("big", "small", "red", "blue", "happy", "old", "new", "warm", "cold", "fast")
PLACES = ("park", "house", "river", "school", "garden", "shop", "hill", "lake")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


# --- Held-out instruction arguments -----------------------------------------------------
#
# Each instruction kind is a rule applied to an argument: the key below is what the answer
# computes. `InstructionSplit` keeps a salted share of each kind's keys out of the English
# the world writes for a corpus (the instruction itself, and every story or fact that
# states the same computation), so an instruction on a held-out key can only be answered
# by applying its rule, never by recalling the pair.

KINDS = ("repeat", "plus", "backwards", "greeting", "letters")
REPEATS = (2, 3, 4)


def kind_keys(kind: str) -> tuple:
    """Every argument key of an instruction kind, in a fixed order."""
    if kind == "repeat":
        return tuple((word, n) for word in WORDS for n in REPEATS)
    if kind == "plus":  # unordered: "a plus b" and "b plus a" compute the same sum
        return tuple((a, b) for a in range(10) for b in range(a, 10))
    if kind in ("backwards", "letters"):
        return WORDS
    if kind == "greeting":
        return NAMES
    raise ValueError(f"unknown instruction kind {kind!r}")


@dataclass(frozen=True)
class InstructionSplit:
    """The held-out keys of each instruction kind: `share` of its keys (at least one and
    at most all but one when share > 0, so the rule is still taught), ranked by the
    SHA-256 of `salt/kind/key`. A share of 0 holds nothing out (the unsplit world)."""

    share: float = 0.0
    salt: str = "instructions"

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 0.5:
            raise ValueError(
                f"the held-out instruction share must be in [0, 0.5], got {self.share}"
            )

    @cached_property
    def heldout(self) -> dict[str, frozenset]:
        out = {}
        for kind in KINDS:
            keys = kind_keys(kind)
            n = min(max(round(self.share * len(keys)), 1), len(keys) - 1) if self.share else 0
            ranked = sorted(keys, key=lambda k, kind=kind: _rank(self.salt, kind, k))
            out[kind] = frozenset(ranked[:n])
        return out

    def holds(self, kind: str, key) -> bool:
        """True when `key` of `kind` is held out of the corpus."""
        return key in self.heldout[kind]


def _rank(salt: str, kind: str, key) -> str:
    return hashlib.sha256(f"{salt}/{kind}/{key!r}".encode()).hexdigest()


def _sum_key(a: int, b: int) -> tuple[int, int]:
    return (min(a, b), max(a, b))


def _holds(split: InstructionSplit | None, kind: str, key) -> bool:
    return split is not None and split.holds(kind, key)


def _story(rng: random.Random, split: InstructionSplit | None = None) -> str:
    name, friend = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
    have, more = rng.randint(1, 9), rng.randint(1, 9)
    while _holds(split, "plus", _sum_key(have, more)):  # the story would state a held-out sum
        have, more = rng.randint(1, 9), rng.randint(1, 9)
    place = rng.choice(PLACES)
    adjective = rng.choice(ADJECTIVES)
    lines = [
        f"{name} went to the {place}.",
        f"{name} had {have} {thing}.",
        f"{friend} gave {name} {more} more {thing}.",
        f"Now {name} has {have + more} {thing}.",
        f"The {place} was {adjective}, and {name} was happy.",
    ]
    if rng.random() < 0.5:
        lines.append(f'{friend} said, "Let us come back tomorrow."')
    return " ".join(lines)


def _facts(rng: random.Random, split: InstructionSplit | None = None) -> str:
    sentences = []
    for _ in range(rng.randint(2, 5)):
        word = rng.choice(WORDS)
        kind = rng.random()
        if kind < 0.4:
            sentences.append(f"The {word} is {rng.choice(ADJECTIVES)}.")
        elif kind < 0.7:
            while _holds(split, "letters", word):  # a held-out word's length is never stated
                word = rng.choice(WORDS)
            sentences.append(f"The word {word} has {len(word)} letters.")
        else:
            n = rng.randint(0, 9)
            if _holds(split, "plus", _sum_key(n, 1)):  # nor is a held-out sum
                allowed = [m for m in range(10) if not split.holds("plus", _sum_key(m, 1))]
                if not allowed:
                    continue
                n = rng.choice(allowed)
            sentences.append(f"{NUMBER_WORDS[n].capitalize()} plus one is {n + 1}.")
    return " ".join(sentences) or f"The {rng.choice(WORDS)} is {rng.choice(ADJECTIVES)}."


def render_instruction(kind: str, key, swap: bool = False) -> tuple[str, str]:
    """(instruction, answer) of `kind` on argument `key`; `swap` writes a sum as b plus a."""
    if kind == "repeat":
        word, n = key
        return f"Say the word {word} {n} times.", " ".join([word] * n)
    if kind == "plus":
        a, b = reversed(key) if swap else key
        return f"What is {a} plus {b}?", str(a + b)
    if kind == "backwards":
        return f"Spell the word {key} backwards.", key[::-1]
    if kind == "greeting":
        return f"Write a greeting for {key}.", f"Hello, {key}!"
    if kind == "letters":
        return f"How many letters are in the word {key}?", str(len(key))
    raise ValueError(f"unknown instruction kind {kind!r}")


def _draw_instruction(rng: random.Random) -> tuple[str, tuple, tuple[str, str]]:
    kind = rng.randrange(5)
    word = rng.choice(WORDS)
    if kind == 0:
        n = rng.randint(2, 4)
        return "repeat", (word, n), render_instruction("repeat", (word, n))
    if kind == 1:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        return "plus", _sum_key(a, b), render_instruction("plus", (a, b))
    if kind == 2:
        return "backwards", word, render_instruction("backwards", word)
    if kind == 3:
        name = rng.choice(NAMES)
        return "greeting", name, render_instruction("greeting", name)
    return "letters", word, render_instruction("letters", word)


def instruction_pair(rng: random.Random, split: InstructionSplit | None = None) -> tuple[str, str]:
    """One English instruction with its single right answer, as the corpus draws them:
    a draw on a key `split` holds out is drawn again."""
    kind, key, pair = _draw_instruction(rng)
    while _holds(split, kind, key):
        kind, key, pair = _draw_instruction(rng)
    return pair


def instruction_kind_key(question: str) -> tuple[str, object]:
    """(kind, key) of an instruction the world writes (the inverse of `render_instruction`)."""
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(question)
        if match:
            groups = match.groups()
            if kind == "repeat":
                return kind, (groups[0], int(groups[1]))
            if kind == "plus":
                return kind, _sum_key(int(groups[0]), int(groups[1]))
            return kind, groups[0]
    raise ValueError(f"not an instruction of the tiny world: {question!r}")


_PATTERNS = (
    ("repeat", re.compile(r"Say the word (\w+) (\d) times\.")),
    ("plus", re.compile(r"What is (\d) plus (\d)\?")),
    ("backwards", re.compile(r"Spell the word (\w+) backwards\.")),
    ("greeting", re.compile(r"Write a greeting for (\w+)\.")),
    ("letters", re.compile(r"How many letters are in the word (\w+)\?")),
)


def heldout_instruction(rng: random.Random, split: InstructionSplit) -> tuple[str, str]:
    """One instruction on a key `split` holds out: a kind drawn uniformly, then one of its
    held-out keys (a sum in either order)."""
    kind = KINDS[rng.randrange(len(KINDS))]
    keys = sorted(split.heldout[kind])
    if not keys:
        raise ValueError("the instruction split holds nothing out (share 0)")
    return render_instruction(kind, rng.choice(keys), swap=rng.random() < 0.5)


def _instruction_doc(rng: random.Random, split: InstructionSplit | None = None) -> str:
    question, answer = instruction_pair(rng, split)
    return f"Instruction: {question}\nAnswer: {answer}"


def english_document(rng: random.Random, split: InstructionSplit | None = None) -> str:
    """One English document of the corpus; none states a computation `split` holds out."""
    roll = rng.random()
    if roll < 0.45:
        return _story(rng, split)
    if roll < 0.75:
        return _facts(rng, split)
    return _instruction_doc(rng, split)
