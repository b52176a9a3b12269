"""TinyHelen's refinement pipeline (METHOD.md C): original text -> lean text.

- `codealign.tinyworld.original` writes the original corpus: the tiny world's English with
  synonyms, typos, filler, asides, joined sentences and boilerplate.
- `refine`: one request per document with a TinyHelen-style prompt
  (`codealign/refine/prompts/*.txt`: remove noise, minimise vocabulary, keep the genre's
  form), answered by a synth backend (`codealign.synth.backends`: `hf`, `openai`) or, offline,
  by `TinyWorldRefiner`, which gives back the world's own lean source of each document.
- `measure`: vocabulary size, type-token ratio and MTLD (lexicalrichness), words per
  sentence and the noise rate (share of words outside the lean world's lexicon).
- `compare` (run by `codealign tinyhelen`, codealign.sweeps.tinyhelen): base models
  pretrained on each corpus at equal tokens.

Offline, the lean corpus is the world's own generator's text, so what the comparison
tests is "lean data helps tiny models", not how well a large LM refines.
"""
