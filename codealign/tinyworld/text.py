"""English for the tiny world: short stories, facts, and instruction/answer pairs.

The pretraining corpus mixes this text with tiny-world code; `code_share` is the code
fraction of the corpus by characters. The instruction/answer pairs have one right
answer each, so a model's English instruction following can be checked exactly.
"""

from __future__ import annotations

import random

from codealign.tinyworld.templates import WORDS

NAMES = ("Tom", "Mia", "Sam", "Ann", "Ben", "Lily", "Max", "Zoe", "Leo", "Ivy")
THINGS = ("apples", "books", "stars", "cups", "stones", "coins", "hats", "balls")
ADJECTIVES = ("big", "small", "red", "blue", "happy", "old", "new", "warm", "cold", "fast")
PLACES = ("park", "house", "river", "school", "garden", "shop", "hill", "lake")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _story(rng: random.Random) -> str:
    name, friend = rng.sample(NAMES, 2)
    thing = rng.choice(THINGS)
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


def _facts(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 5)):
        word = rng.choice(WORDS)
        kind = rng.random()
        if kind < 0.4:
            sentences.append(f"The {word} is {rng.choice(ADJECTIVES)}.")
        elif kind < 0.7:
            sentences.append(f"The word {word} has {len(word)} letters.")
        else:
            n = rng.randint(0, 9)
            sentences.append(f"{NUMBER_WORDS[n].capitalize()} plus one is {n + 1}.")
    return " ".join(sentences)


def instruction_pair(rng: random.Random) -> tuple[str, str]:
    """One English instruction with its single right answer."""
    kind = rng.randrange(5)
    word = rng.choice(WORDS)
    if kind == 0:
        n = rng.randint(2, 4)
        return f"Say the word {word} {n} times.", " ".join([word] * n)
    if kind == 1:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        return f"What is {a} plus {b}?", str(a + b)
    if kind == 2:
        return f"Spell the word {word} backwards.", word[::-1]
    if kind == 3:
        name = rng.choice(NAMES)
        return f"Write a greeting for {name}.", f"Hello, {name}!"
    return f"How many letters are in the word {word}?", str(len(word))


def _instruction_doc(rng: random.Random) -> str:
    question, answer = instruction_pair(rng)
    return f"Instruction: {question}\nAnswer: {answer}"


def english_document(rng: random.Random) -> str:
    """One English document of the corpus."""
    roll = rng.random()
    if roll < 0.45:
        return _story(rng)
    if roll < 0.75:
        return _facts(rng)
    return _instruction_doc(rng)
