"""The pretraining corpus: tiny-world code mixed with English, `code_share` code by characters.

Code documents are whole functions of the *train* split, in HumanEval form (signature,
docstring, body), drawn with replacement from the `code` given; English documents come from
`codealign.tinyworld.text`. The pool and eval splits never enter the corpus.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from codealign.tinyworld.text import english_document


def make_corpus(
    code: Sequence[str], code_share: float, n_chars: int, seed: int
) -> list[dict[str, str]]:
    """Documents `{"kind": "code"|"text", "text": ...}` totalling about `n_chars` characters.

    Each next document is code when the code share so far is below `code_share`, so the
    mixture is exact up to one document at any prefix, and 0 and 1 give pure corpora.
    """
    if not 0.0 <= code_share <= 1.0:
        raise ValueError(f"code_share must be in [0, 1], got {code_share}")
    if code_share > 0 and not code:
        raise ValueError("a corpus with code needs at least one code document")
    rng = random.Random(seed)
    documents: list[dict[str, str]] = []
    code_chars = total = 0
    while total < n_chars:
        want_code = code_share > 0 and (code_share == 1.0 or code_chars <= code_share * total)
        if want_code:
            text = rng.choice(code)
            code_chars += len(text)
        else:
            text = english_document(rng)
        documents.append({"kind": "code" if want_code else "text", "text": text})
        total += len(text)
    return documents
