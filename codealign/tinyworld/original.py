"""The tiny world's English as an "original" corpus: noisy, varied, wordy (TinyHelen's input).

TinyHelen (METHOD.md C) refines real pretraining text, which is noisy (typos,
boilerplate, irrelevant asides) and lexically rich, into a lean version. The tiny world's
English (`codealign.tinyworld.text`) is already lean, so the original counterpart is made
from it: each lean document is rewritten, deterministically from its own seed, with

- synonyms: words of the world's small vocabulary swapped for rarer ones
  ("big" -> "enormous", "went" -> "wandered");
- typos: a swapped, dropped or doubled letter in longer words (never in a name, in one of
  the world's object words, or in an instruction, whose answer depends on its words);
- filler: a sentence opened with "Honestly," or "You know," (an instruction with
  "Hey there!" or closed with "Thanks a lot!");
- asides: a sentence closed by ", if I remember correctly";
- longer sentences: two sentences joined into one (", and after that");
- boilerplate: a line such as "Click here to subscribe for more!".

The facts a document states and the answer of an instruction stay as they were, so an
original document and its lean source say the same thing. Each document's lean source is
`english_document(random.Random(source_seed))`: the world's own generator, which is
what the offline `tinyworld` refiner (codealign.refine) gives back.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from codealign.tinyworld.templates import WORDS
from codealign.tinyworld.text import (
    ADJECTIVES,
    NAMES,
    NUMBER_WORDS,
    PLACES,
    THINGS,
    InstructionSplit,
    english_document,
)

GENRES = ("story", "facts", "instruction")
INSTRUCTION_PREFIX = "Instruction: "
ANSWER_PREFIX = "\nAnswer: "
NOISE_KINDS = ("synonyms", "typos", "fillers", "asides", "joins", "boilerplate")

# Lean word -> rarer words with the same meaning in the world's sentences.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "went": ("wandered", "headed", "strolled", "travelled"),
    "had": ("possessed", "owned", "held"),
    "gave": ("handed", "passed", "offered"),
    "more": ("additional", "extra", "further"),
    "now": ("currently", "presently", "consequently"),
    "has": ("possesses", "holds", "owns"),
    "happy": ("joyful", "cheerful", "delighted", "content"),
    "big": ("huge", "enormous", "large", "gigantic"),
    "small": ("tiny", "little", "minuscule"),
    "red": ("crimson", "scarlet"),
    "blue": ("azure", "navy"),
    "old": ("ancient", "elderly", "aged"),
    "new": ("novel", "fresh", "modern"),
    "warm": ("toasty", "balmy", "mild"),
    "cold": ("chilly", "freezing", "frosty"),
    "fast": ("speedy", "quick", "rapid"),
    "said": ("remarked", "exclaimed", "declared"),
    "tomorrow": ("later", "soon"),
    "letters": ("characters", "symbols"),
    "word": ("term", "expression"),
    "house": ("home", "residence", "dwelling"),
    "shop": ("store", "market"),
    "hill": ("slope", "mound"),
    "lake": ("pond", "lagoon"),
    "river": ("stream", "creek"),
    "school": ("academy", "classroom"),
    "garden": ("yard", "orchard"),
    "park": ("playground", "meadow"),
    "say": ("repeat", "utter", "pronounce"),
    "spell": ("render", "transcribe"),
    "backwards": ("reversed", "inverted"),
    "greeting": ("salutation", "welcome"),
}
FILLERS = (
    "Well,",
    "Honestly,",
    "You know,",
    "Basically,",
    "As a matter of fact,",
    "Interestingly enough,",
    "To be perfectly honest,",
    "Um,",
)
ASIDES = (
    ", if I remember correctly",
    ", or so they say",
    ", which nobody really expected",
    ", as everyone knows",
    " (not that it matters much)",
)
JOINS = (", and after that,", "; moreover,", ", and then,", "; meanwhile,", ", whereupon")
BOILERPLATE = (
    "Posted by admin on the community board.",
    "Click here to subscribe for more!",
    "All rights reserved.",
    "Share this page with your friends!",
    "Advertisement: buy one, get one free.",
    "Read more stories on our website.",
)
INSTRUCTION_OPENERS = ("Hey there! ", "Please, ", "Quick question: ", "I was wondering: ")
INSTRUCTION_CLOSERS = (" Thanks a lot!", " Cheers.", " I appreciate it!", " Be quick, please.")

# Words a typo must never touch: names and the object words facts are about.
PROTECTED = frozenset(w.lower() for w in (*NAMES, *WORDS))
_SENTENCE_BREAK = re.compile(r'(?<=[.!?])\s+|(?<=[.!?]")\s+')
_WORD = re.compile(r"[A-Za-z]+")


def genre_of(text: str) -> str:
    """The genre of a tiny-world English document, from its form: an instruction is
    `Instruction: ...\\nAnswer: ...`, a story names one of the world's people, and the
    rest (sentences about words and numbers) are facts."""
    if text.startswith(INSTRUCTION_PREFIX) and ANSWER_PREFIX in text:
        return "instruction"
    if any(re.search(rf"\b{name}\b", text) for name in NAMES):
        return "story"
    return "facts"


def _match_case(word: str, like: str) -> str:
    return word[0].upper() + word[1:] if like[:1].isupper() else word


def _synonyms(text: str, rng: random.Random, rate: float, counts: Counter) -> str:
    def swap(match: re.Match) -> str:
        word = match.group(0)
        options = SYNONYMS.get(word.lower())
        if not options or rng.random() >= rate:
            return word
        counts["synonyms"] += 1
        return _match_case(rng.choice(options), word)

    return _WORD.sub(swap, text)


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # swap two neighbours
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop one
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # double one


def _typos(text: str, rng: random.Random, rate: float, counts: Counter) -> str:
    def maybe(match: re.Match) -> str:
        word = match.group(0)
        if len(word) < 4 or word.lower() in PROTECTED or rng.random() >= rate:
            return word
        counts["typos"] += 1
        return _typo(word, rng)

    return _WORD.sub(maybe, text)


def _lower_start(sentence: str) -> str:
    first = sentence.split(" ", 1)[0].strip('",')
    return sentence if first in NAMES else sentence[:1].lower() + sentence[1:]


def _prose(text: str, rng: random.Random, rates: Any, counts: Counter) -> str:
    sentences = _SENTENCE_BREAK.split(text)
    out: list[str] = []
    for sentence in sentences:
        if rng.random() < rates.aside_rate and sentence.endswith(".") and len(sentence) > 1:
            sentence = sentence[:-1] + rng.choice(ASIDES) + "."
            counts["asides"] += 1
        if rng.random() < rates.filler_rate:
            sentence = rng.choice(FILLERS) + " " + _lower_start(sentence)
            counts["fillers"] += 1
        if out and out[-1].endswith(".") and rng.random() < rates.join_rate:
            out[-1] = out[-1][:-1] + rng.choice(JOINS) + " " + _lower_start(sentence)
            counts["joins"] += 1
        else:
            out.append(sentence)
    text = " ".join(out)
    text = _synonyms(text, rng, rates.synonym_rate, counts)
    text = _typos(text, rng, rates.typo_rate, counts)
    if rng.random() < rates.boilerplate_rate:
        line = rng.choice(BOILERPLATE)
        text = f"{line}\n{text}" if rng.random() < 0.5 else f"{text}\n{line}"
        counts["boilerplate"] += 1
    return text


def _instruction(text: str, rng: random.Random, rates: Any, counts: Counter) -> str:
    question, answer = text.removeprefix(INSTRUCTION_PREFIX).split(ANSWER_PREFIX, 1)
    question = _synonyms(question, rng, rates.synonym_rate, counts)
    if rng.random() < rates.filler_rate:
        question = rng.choice(INSTRUCTION_OPENERS) + _lower_start(question)
        counts["fillers"] += 1
    if rng.random() < rates.aside_rate:
        question += rng.choice(INSTRUCTION_CLOSERS)
        counts["asides"] += 1
    text = f"{INSTRUCTION_PREFIX}{question}{ANSWER_PREFIX}{answer}"
    if rng.random() < rates.boilerplate_rate:  # after the answer: its first line stays exact
        text += "\n" + rng.choice(BOILERPLATE)
        counts["boilerplate"] += 1
    return text


def original_of(lean: str, rng: random.Random, rates: Any) -> tuple[str, Counter]:
    """The original (noisy) form of one lean document, and how much of each noise it got.

    `rates` has the `*_rate` attributes of `codealign.params.refine.RefineParams`.
    """
    counts: Counter = Counter()
    if genre_of(lean) == "instruction":
        return _instruction(lean, rng, rates, counts), counts
    return _prose(lean, rng, rates, counts), counts


def original_instruction(question: str, rng: random.Random, rates: Any) -> str:
    """An instruction's question as the original corpus writes it (synonyms, filler)."""
    text, _ = original_of(f"{INSTRUCTION_PREFIX}{question}{ANSWER_PREFIX}-", rng, rates)
    text = text.removeprefix(INSTRUCTION_PREFIX)
    return text.split(ANSWER_PREFIX, 1)[0]


def source_seed(seed: int, index: int) -> str:
    """The seed of document `index`'s lean source: a string, hashed into its own stream."""
    return f"refine/{seed}/{index}"


def lean_source(seed: str, split: InstructionSplit | None = None) -> str:
    """The lean document the world's generator writes from `seed`, under the instruction
    `split` (codealign.tinyworld.text.InstructionSplit)."""
    return english_document(random.Random(seed), split)


def original_corpus(
    n: int, seed: int, rates: Any, split: InstructionSplit | None = None
) -> Iterator[dict[str, Any]]:
    """`n` original documents `{"id", "genre", "source_seed", "text", "noise"}`; none
    states an instruction computation `split` holds out."""
    for index in range(n):
        src = source_seed(seed, index)
        lean = lean_source(src, split)
        text, counts = original_of(lean, random.Random(f"{src}/noise"), rates)
        yield {
            "id": f"doc/{index}",
            "genre": genre_of(lean),
            "source_seed": src,
            "text": text,
            "noise": {kind: counts[kind] for kind in NOISE_KINDS},
        }


def lexicon(sample: int = 3000) -> frozenset[str]:
    """Every word the world's lean generator writes (lower-case, letters only): its word
    tables, and the template words of a fixed sample of `sample` documents."""
    words = {
        w.lower()
        for table in (NAMES, THINGS, ADJECTIVES, PLACES, NUMBER_WORDS, WORDS)
        for entry in table
        for w in _WORD.findall(entry)
    }
    rng = random.Random("lexicon")
    for _ in range(sample):
        words.update(w.lower() for w in _WORD.findall(english_document(rng)))
    return frozenset(words)
