"""The chat format: how a problem becomes a question, a prompt, and how an answer becomes a program.

One name each, used by SFT formatting (`codealign.specialists.sft`), sampling
(`codealign.dpo.sample`, `codealign.specialists.routing`), evaluation
(`codealign.evaluation.evaluate`) and DPO pairs (`codealign.dpo.pairs`):

- `question(record)`: the natural-language question a problem record puts to a chat
  policy (tinyeval/tiny-world tasks: their `instruction`; MBPP: its text and first test in
  a docstring; HumanEval-style prompts: a request to complete the function; APPS: the
  description and any starter code).
- `messages(question)`: the user turn; `answer_messages(code)`: the assistant turn.
- `render(tokenizer, question)`: the prompt string, the tokenizer's chat template applied
  to `messages(question)` up to where the assistant's answer begins. Tokenize it with
  `add_special_tokens=False`: the template already holds every special token.
- `program(answer)`: the program in an answer, the first fenced block when there is one,
  else the whole answer, with exactly one trailing newline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from codealign.curation.datasets import mbpp_prompt
from codealign.errors import CodealignError

# A fenced block: ``` with an optional language tag, up to the closing fence or the end
# (an answer cut off by the token budget keeps what it wrote).
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
# A prompt that opens a function (HumanEval's signature and docstring).
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]", re.MULTILINE)

COMPLETE = "Complete the following Python function. Answer with the whole function.\n\n"


def question(record: dict[str, Any]) -> str:
    """What a chat policy is asked for a problem record (see the module docstring)."""
    instruction = record.get("instruction")
    if isinstance(instruction, str) and instruction.strip():
        return instruction
    if isinstance(record.get("text"), str) and record.get("test_list"):
        return mbpp_prompt(record)
    if isinstance(record.get("description"), str):
        starter = record.get("starter_code") or ""
        return record["description"] + (f"\n\nStart from:\n{starter}" if starter else "")
    prompt = record.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        if _DEF.search(prompt):
            return f"{COMPLETE}```python\n{prompt}```"
        return prompt  # a problem statement (MBPP+'s text and assert in a docstring)
    raise CodealignError(f"task {record.get('task_id')!r}: no question text in the record")


def messages(question: str) -> list[dict[str, str]]:
    """The conversational prompt TRL and the chat template understand: one user turn."""
    return [{"role": "user", "content": question}]


def answer_messages(code: str) -> list[dict[str, str]]:
    """The assistant turn of a conversational example (SFT completion, DPO chosen/rejected)."""
    return [{"role": "assistant", "content": code}]


def render(tokenizer, question: str) -> str:
    """The prompt string, ending where the assistant's answer begins."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise CodealignError(
            f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')}: the tokenizer has no chat "
            "template"
        )
    return tokenizer.apply_chat_template(
        messages(question), tokenize=False, add_generation_prompt=True
    )


def render_all(tokenizer, questions: Sequence[str]) -> list[str]:
    return [render(tokenizer, q) for q in questions]


def program(answer: str) -> str:
    """The program in an answer: the first fenced block, else the whole answer (one final \\n)."""
    match = _FENCE.search(answer)
    code = match.group(1) if match else answer
    return code.strip("\n") + "\n"
