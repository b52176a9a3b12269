"""Refine original documents into lean ones through a synth backend.

Each document is one request. Prose (stories, facts) gets `prompts/prose.txt`, which asks
for `EDITED:\\n<text> <end>`; an instruction document gets `prompts/instruction.txt`, which
asks for `<instruction> <split> <answer> <end>` after the prompt's closing `[EDITED]`. The
prompts follow the simplification prompts of TinyHelen's code
(github.com/EmpathYang/TinyHelen, prompts/simplification/training/*_simplification.txt:
a linguist rewriting for preschool children, simplest grammar and vocabulary, noise
removed, the genre's format kept, an `<end>` marker) with the tiny world's genres and
without the rules for real names, places and dates, which the tiny world does not have.

An answer that does not parse is rejected and counted by reason, and its document is
left out of the lean corpus, as the synth stage does with its rejections.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from string import Template
from typing import Any

from codealign.synth.backends import Backend, Request, Response, Store
from codealign.tinyworld.original import ANSWER_PREFIX, INSTRUCTION_PREFIX, lean_source
from codealign.tinyworld.text import InstructionSplit

END = "<end>"
SPLIT = "<split>"
EDITED = "EDITED:"
GENRE_FORM = {
    "story": "a short story told in order: who went where, what they had, what they were "
    "given, what they have now, and what they said, each in its own short sentence.",
    "facts": "short statements of fact about things, words and numbers, one per sentence.",
}


@functools.cache
def template(name: str) -> Template:
    text = resources.files("codealign.refine").joinpath("prompts", f"{name}.txt")
    return Template(text.read_text("utf-8"))


def split_instruction(text: str) -> tuple[str, str]:
    """(question, answer) of an instruction document; the answer is all after `Answer: `."""
    question, _, answer = text.removeprefix(INSTRUCTION_PREFIX).partition(ANSWER_PREFIX)
    return question, answer


def prompt_of(document: dict[str, Any]) -> str:
    """The refinement prompt of one original document (`genre`, `text`)."""
    if document["genre"] == "instruction":
        task, response = split_instruction(document["text"])
        return template("instruction").substitute(task=task, response=response)
    return template("prose").substitute(
        genre=document["genre"], genre_form=GENRE_FORM[document["genre"]], text=document["text"]
    )


def requests_of(
    documents: Sequence[dict[str, Any]], temperature: float, max_tokens: int, seed: int
) -> list[Request]:
    """One request per document; its seed is `seed` + the document's position."""
    return [
        Request(
            id=document["id"],
            messages=({"role": "user", "content": prompt_of(document)},),
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed + index,
            meta={"genre": document["genre"], "source_seed": document["source_seed"]},
        )
        for index, document in enumerate(documents)
    ]


def parse_refined(answer: str | None, genre: str) -> tuple[str | None, str | None]:
    """(lean text, None) or (None, rejection reason) for one answer."""
    if answer is None:
        return None, "no_answer"
    if END not in answer:
        return None, "no_end_marker"
    body = answer.split(END, 1)[0]
    if genre == "instruction":
        body = body.split("[EDITED]")[-1]
        parts = body.split(SPLIT)
        if len(parts) != 2:
            return None, "not_instruction_and_answer"
        question, answer_text = (" ".join(p.split()) for p in parts)
        if not question or not answer_text:
            return None, "empty"
        return f"{INSTRUCTION_PREFIX}{question}{ANSWER_PREFIX}{answer_text}", None
    if EDITED in body:
        body = body.split(EDITED)[-1]
    text = " ".join(body.split())
    return (text, None) if text else (None, "empty")


class TinyWorldRefiner(Backend):
    """Offline refinement: the world's own lean source of each document, written in the
    answer format the prompts ask for, so the same parser reads every backend.

    It reads no English: it regenerates the lean document from `meta["source_seed"]`,
    under the instruction `split` the original corpus was written under.
    """

    name = "tinyworld"

    def __init__(self, split: InstructionSplit | None = None) -> None:
        super().__init__(model="tinyworld")
        self.split = split

    def answer(self, request: Request) -> str:
        lean = lean_source(request.meta["source_seed"], self.split)
        if request.meta["genre"] == "instruction":
            question, answer = split_instruction(lean)
            return f"{question} {SPLIT} {answer} {END}"
        return f"{EDITED}\n{lean} {END}"

    def _complete(self, requests: list[Request], store: Store, bar: Any) -> None:
        for position, request in enumerate(requests):
            store(position, Response(self.answer(request)))
            bar.update(1)


def make_refiner(backend: str, synth: Any, split: InstructionSplit | None = None) -> Backend:
    """The refinement backend: `TinyWorldRefiner` (under the corpus's instruction `split`),
    or the synth stage's `hf`/`openai` backend built from the `synth` section (endpoint,
    model, cache, retries)."""
    if backend == "tinyworld":
        return TinyWorldRefiner(split)
    from dataclasses import replace

    from codealign.synth.backends import make_backend

    return make_backend(replace(synth, backend=backend))


def refine(
    documents: Sequence[dict[str, Any]],
    backend: Backend,
    *,
    temperature: float,
    max_tokens: int,
    seed: int,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Lean documents `{"id", "genre", "text"}` (rejected ones left out) and counts."""
    requests = requests_of(documents, temperature, max_tokens, seed)
    responses = backend.complete(requests, progress=progress, desc="refine")
    lean: list[dict[str, Any]] = []
    rejected: Counter = Counter()
    for document, response in zip(documents, responses, strict=True):
        text, reason = parse_refined(response.text, document["genre"])
        if text is None:
            rejected[response.error or reason] += 1
            continue
        lean.append({"id": document["id"], "genre": document["genre"], "text": text})
    stats = {
        "requests": len(requests),
        "accepted": len(lean),
        "rejected": dict(sorted(rejected.items())),
        "backend": {"name": backend.name, "model": backend.model, **backend.stats},
    }
    return lean, stats
