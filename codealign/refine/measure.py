"""How lean a corpus is: vocabulary, lexical diversity, sentence length and noise.

- `vocabulary`: distinct words of the whole corpus, as lexicalrichness tokenizes them
  (lower-cased; digits and punctuation dropped).
- `ttr` and `mtld` (bidirectional, threshold 0.72): over the first `measure_words` words
  only, since both depend on text length and the two corpora differ in length.
- `words_per_sentence`: mean over sentences (split at `.`, `!`, `?` and line breaks).
- `noise_rate`: the share of words (letters only, lower-cased) outside `lexicon`, the
  words the world's lean generator writes (`codealign.tinyworld.original.lexicon`):
  typos, synonyms, filler, asides and boilerplate all land there. A lean corpus from the
  world's generator scores 0 by construction; a refinement by a model scores the words it
  brought in that the lean world does not use.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE = re.compile(r"[.!?]+|\n")


def measure(
    documents: Sequence[dict[str, Any]], lexicon: Collection[str], measure_words: int
) -> dict[str, Any]:
    """The measures above for documents `{"genre", "text"}`."""
    from lexicalrichness import LexicalRichness

    texts = [d["text"] for d in documents]
    tokens = LexicalRichness("\n".join(texts)).wordlist
    window = tokens[:measure_words]
    words = [w.lower() for text in texts for w in _WORD.findall(text)]
    sentences = [s for text in texts for s in _SENTENCE.split(text) if _WORD.search(s)]
    outside = Counter(w for w in words if w not in lexicon)
    mtld = None
    if window:
        mtld = float(LexicalRichness(window, preprocessor=None, tokenizer=None).mtld(0.72))
    return {
        "documents": len(texts),
        "chars": sum(len(t) for t in texts),
        "words": len(tokens),
        "vocabulary": len(set(tokens)),
        "ttr": len(set(window)) / len(window) if window else None,
        "mtld": mtld,
        "measure_words": len(window),
        "words_per_sentence": len(words) / len(sentences) if sentences else None,
        "noise_rate": sum(outside.values()) / len(words) if words else None,
        "top_noise_words": dict(outside.most_common(10)),
        "genres": dict(sorted(Counter(d["genre"] for d in documents).items())),
    }
