"""The policy DPO starts from, as it lies on disk, and the prompts it is asked.

A policy path is one of:

- a plain HF model dir (`config.json`): the model itself, e.g. `models/base_model`;
- a PEFT adapter dir (`adapter_config.json`): that adapter over its base model, which is
  the adapter's `base_model_name_or_path` unless a base dir is given explicitly;
- an SFT dir with `router.json` and `adapter_<i>/` (issue 6): with mode `single` it must
  hold one adapter (K = 1); with mode `routed` every adapter is loaded over ONE base
  model and each question goes to its nearest centroid's adapter (`codealign.specialists.routing`).

Prompts follow the SFT format: the question is the user turn of the model's chat template
and the answer is a whole function, so completions are scored as full programs.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError

log = logging.getLogger(__name__)

POLICY_MODES = ("single", "routed")


@dataclass(frozen=True)
class PolicySpec:
    """Where a policy's pieces are: a base model dir and zero or more adapter dirs."""

    base_dir: Path
    adapters: tuple[Path, ...] = ()
    router_dir: Path | None = None  # set only for routed specialists

    @property
    def routed(self) -> bool:
        return self.router_dir is not None and len(self.adapters) > 1

    def describe(self) -> dict[str, Any]:
        return {
            "base": str(self.base_dir),
            "adapters": [str(a) for a in self.adapters],
            "routed": self.routed,
        }


def _adapter_base(adapter_dir: Path, base_dir: Path | None) -> Path:
    if base_dir is not None:
        return base_dir
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CodealignError(f"{adapter_dir}/adapter_config.json: cannot read: {exc}") from None
    base = config.get("base_model_name_or_path")
    if not base or not (Path(base) / "config.json").is_file():
        raise CodealignError(
            f"{adapter_dir}: its base model {base!r} is not a model dir here; pass --base-model"
        )
    return Path(base)


def _sft_adapters(policy_dir: Path) -> list[Path]:
    adapters = sorted(
        (p for p in policy_dir.glob("adapter_*") if (p / "adapter_config.json").is_file()),
        key=lambda p: int(p.name.split("_")[-1]) if p.name.split("_")[-1].isdigit() else 0,
    )
    if not adapters:
        raise CodealignError(f"{policy_dir}: router.json but no adapter_<i>/ dirs")
    return adapters


def resolve_policy(path: str | Path, mode: str = "single", base_dir: Path | None = None):
    """The `PolicySpec` of a policy path (see the module docstring)."""
    path = Path(path)
    if mode not in POLICY_MODES:
        raise CodealignError(
            f"sample.policy must be one of {', '.join(POLICY_MODES)}, got {mode!r}"
        )
    if (path / "adapter_config.json").is_file():
        return PolicySpec(_adapter_base(path, base_dir), (path,))
    if (path / "router.json").is_file():
        adapters = _sft_adapters(path)
        base = _adapter_base(adapters[0], base_dir)
        if len(adapters) == 1:
            return PolicySpec(base, (adapters[0],))
        if mode == "single":
            raise CodealignError(
                f"{path}: {len(adapters)} specialists, but sample.policy is 'single'; "
                "use 'routed' or an SFT run with k=1"
            )
        return PolicySpec(base, tuple(adapters), router_dir=path)
    if (path / "config.json").is_file():
        return PolicySpec(path)
    raise CodealignError(
        f"{path}: not a policy (no config.json, adapter_config.json or router.json)"
    )


def adapter_name(index: int) -> str:
    """The PEFT adapter name of specialist `index` (the router's naming)."""
    return f"cluster_{index}"


@dataclass
class LoadedPolicy:
    """A policy in memory: tokenizer, model (adapters loaded), and the router if routed."""

    spec: PolicySpec
    tokenizer: Any
    model: Any
    router: Any = None

    def route(self, questions: Sequence[str]) -> list[int]:
        """The adapter index answering each question (all 0 unless routed)."""
        if self.router is None:
            return [0] * len(questions)
        return self.router.route(questions)

    def use(self, index: int) -> None:
        if self.spec.adapters:
            self.model.set_adapter(adapter_name(index))


def load_policy(
    spec: PolicySpec, *, dtype: str = "float32", fused_lm_head: bool = False
) -> LoadedPolicy:
    """Load a policy; adapters go into one PeftModel as `cluster_<i>`.

    Routed specialists load through `codealign.specialists.routing.Router`, which checks
    the manifest, the base model's hash and the embedder. `fused_lm_head` patches the base
    model with TRL's chunked log-prob head before the adapters wrap it, which is how
    DPOTrainer scores sequences; the reference log-probs of the `pairs` stage come from that kernel.
    """
    if spec.routed:
        try:
            from codealign.specialists.routing import Router
        except ImportError:
            raise CodealignError(
                "sample.policy 'routed' needs codealign.specialists.routing "
                "(the specialists' router)"
            ) from None
        router = Router(spec.router_dir, base_model=spec.base_dir, dtype=dtype)
        if fused_lm_head:
            from trl.trainer.utils import add_fused_lm_head

            add_fused_lm_head(router.model.get_base_model())
        return LoadedPolicy(spec, router.tokenizer, router.model, router)

    from codealign.lm.generation import load_causal_lm

    tokenizer, model = load_causal_lm(spec.base_dir, dtype)
    if fused_lm_head:
        from trl.trainer.utils import add_fused_lm_head

        add_fused_lm_head(model)
    if spec.adapters:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, spec.adapters[0], adapter_name=adapter_name(0))
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CodealignError(f"{spec.adapters[0]}: cannot load adapter: {first}") from None
        model.eval()
    return LoadedPolicy(spec, tokenizer, model)


def program_of(answer: str) -> str:
    """The program in an answer: the first fenced block if there is one, else the answer."""
    match = re.search(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", answer, re.DOTALL)
    return match.group(1) if match else answer


# ---- prompts -------------------------------------------------------------------------------


def question_of(record: dict[str, Any]) -> str:
    """The natural-language question a problem record puts to the SFT policy.

    Tiny-world tasks carry their `instruction` (the SFT question format). MBPP records
    give their text plus the first test, which names the function and its call shape (the
    usual MBPP prompt); APPS records their description and starter code. HumanEval-style
    records without an instruction ask for the function whose signature and docstring
    are the prompt.
    """
    if record.get("instruction"):
        return str(record["instruction"])
    if "text" in record and "test_list" in record:
        tests = record.get("test_list") or []
        first = f"\nYour code should pass this test:\n{tests[0]}" if tests else ""
        return f"{record['text']}{first}"
    if "description" in record:
        starter = record.get("starter_code") or ""
        return record["description"] + (f"\n\nStart from:\n{starter}" if starter else "")
    if "prompt" in record:
        return f"Complete this Python function:\n{record['prompt']}"
    raise CodealignError(f"task {record.get('task_id')!r}: no question text in the record")


def chat_prompt(question: str) -> list[dict[str, str]]:
    """The conversational prompt TRL and the chat template understand."""
    return [{"role": "user", "content": question}]


def chat_answer(code: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": code}]


def render_prompts(tokenizer, questions: Sequence[str]) -> list[str]:
    """Prompt strings that end where the assistant's answer begins."""
    if tokenizer.chat_template is None:
        raise CodealignError("the policy's tokenizer has no chat template")
    return [
        tokenizer.apply_chat_template(chat_prompt(q), tokenize=False, add_generation_prompt=True)
        for q in questions
    ]
