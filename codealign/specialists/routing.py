"""Routed inference: K LoRA specialists served over one base model.

`Router(model_dir)` reads the manifest the `sft` stage writes (`router.json`), loads
the base model once and every adapter into it with PEFT's `load_adapter`, so memory
is one base model plus K small adapters, never K merged copies. A question is
embedded with the embedder the clusters were fitted with, assigned to the nearest
centroid, and answered with that cluster's adapter.

Batches mix adapters: rows are sorted by cluster and a batch that holds several
clusters applies each row's own adapter inside one forward pass (`GatheredLora`: the
K adapters of a layer stacked, each row's gathered, two batched matmuls; PEFT's
`adapter_names=`, which loops over the adapters in every layer, where the adapters
differ in rank or kind); a batch of one cluster runs the plain forward after
`set_adapter`. `mixed=False` makes every batch single-cluster (the paper's "group by
cluster and swap"); benchmarks/bench_routing.py compares them.

Before anything is loaded the router checks what a user can get wrong: a manifest
that is not valid JSON or lacks a key, centroids that do not match it, a missing
adapter directory, an adapter or a base model other than the one the adapters were
trained on (sha256 of the base model's files), an embedder other than the one that
produced the centroids. Each is one `CodealignError` line.

Fallback (`specialists.fallback_margin`): given a K = 1 sft dir as `fallback` and a
margin above 0, the router loads that adapter too (adapter index K, PEFT name
`generalist`) and sends a question to it when the cosine similarity of its embedding to
the best centroid exceeds that to the second best by less than the margin
(`codealign.specialists.cluster.cosine_margins`); the nearest centroid still picks the
specialist of every other question.

`generate_command` and `route_command` are the `codealign generate` / `codealign route`
commands; the `codealign` group turns their CodealignError into one `error:` line.

The question is put in the chat format of `codealign.evaluation.chat` (`chat.render`);
the answer is the model's whole reply, and `chat.program` takes the program out of it.
The manifest and adapter metadata are read through `codealign.specialists.adapters`,
the module training writes them with; serving never imports training.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from codealign.errors import CodealignError
from codealign.evaluation import chat
from codealign.specialists.adapters import (
    adapter_name,
    check_adapter_dir,
    k1_adapter,
    model_digest,
    read_router_manifest,
)

log = logging.getLogger(__name__)
FALLBACK_NAME = "generalist"  # the PEFT name of the K = 1 adapter a router falls back to


class GatheredLora:
    """Every row of a batch through its own LoRA adapter, in two batched matmuls per layer.

    PEFT's mixed-batch forward (`adapter_names=`) runs, in every LoRA layer, one small
    matmul pair per adapter present in the batch, a Python loop over K. Here each
    layer's K `lora_A` weights are one `[K, r, in]` tensor and its `lora_B` weights one
    `[K, out, r]` tensor; PEFT's parameters are re-pointed to views of them, so nothing
    is stored twice. Within `rows(index)` every LoRA layer computes
    `base(x) + scaling[i] * (x A[i]ᵀ) B[i]ᵀ` for row i's adapter by gathering its A and B:
    the same arithmetic as PEFT's at inference (dropout is off), in one code path for any
    mix. `build` returns None where this does not apply (adapters of different ranks or
    targets, DoRA or other variants, LoRA on non-Linear layers); PEFT's path is used then.
    """

    def __init__(self, layers: list[tuple[Any, Any, Any, Any]]) -> None:
        self.layers = layers  # (module, A [K, r, in], B [K, out, r], scaling [K])

    @classmethod
    def build(cls, model, names: Sequence[str]) -> GatheredLora | None:
        import torch
        from peft.tuners.lora import Linear as LoraLinear
        from peft.tuners.lora import LoraLayer

        layers = []
        for module in model.modules():
            if not isinstance(module, LoraLayer):
                continue
            if type(module) is not LoraLinear or any(n not in module.lora_A for n in names):
                return None
            if any(module.lora_variant.get(n) is not None for n in names):
                return None
            a = [module.lora_A[n].weight for n in names]
            b = [module.lora_B[n].weight for n in names]
            if len({w.shape for w in a}) != 1 or len({w.shape for w in b}) != 1:
                return None
            with torch.no_grad():
                stacked_a, stacked_b = torch.stack(a), torch.stack(b)
                for i, n in enumerate(names):
                    module.lora_A[n].weight.data = stacked_a[i]
                    module.lora_B[n].weight.data = stacked_b[i]
            scaling = torch.tensor([float(module.scaling[n]) for n in names], dtype=a[0].dtype)
            layers.append((module, stacked_a, stacked_b, scaling.to(a[0].device)))
        return cls(layers) if layers else None

    @contextlib.contextmanager
    def rows(self, index: Sequence[int]) -> Iterator[None]:
        """Within the block, row i of every batch goes through adapter `index[i]`."""
        import torch

        rows = torch.as_tensor(list(index), device=self.layers[0][1].device)
        for module, a, b, scaling in self.layers:
            module.forward = _gathered_forward(module, a, b, scaling, rows)
        try:
            yield
        finally:
            for module, *_ in self.layers:
                del module.forward  # back to the class's forward


def _gathered_forward(module, a, b, scaling, rows):
    import torch

    def forward(x, *args, **kwargs):
        kwargs.pop("adapter_names", None)
        result = module.base_layer(x, *args, **kwargs)
        if x.dim() != 3 or x.shape[0] != rows.shape[0]:
            raise RuntimeError(
                f"gathered LoRA expects [batch={rows.shape[0]}, tokens, features], got "
                f"{tuple(x.shape)}"
            )
        h = torch.bmm(x.to(a.dtype), a[rows].transpose(1, 2))  # [batch, tokens, r]
        h = (h * scaling[rows].view(-1, 1, 1)).to(result.dtype)
        # In place: no [batch, tokens, out] delta beside the output (the peak memory of a
        # prefill), and one pass over the output instead of two.
        return result.baddbmm_(h, b[rows].transpose(1, 2).to(result.dtype))

    return forward


class Router:
    """K specialist adapters over one base model, chosen per question by nearest centroid."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        base_model: str | Path | None = None,
        embed_cache_dir: str | Path | None = None,
        dtype: str = "float32",
        device: str | None = None,
        fallback: str | Path | None = None,
        fallback_margin: float = 0.0,
    ) -> None:
        import torch
        from peft import PeftModel

        from codealign.lm.generation import load_causal_lm
        from codealign.specialists.cluster import read_centroids

        self.model_dir = Path(model_dir)
        self.manifest = read_router_manifest(self.model_dir)
        where = str(self.model_dir / "router.json")
        self.k = int(self.manifest["k"])
        self.centroids = read_centroids(
            self.model_dir / self.manifest["centroids"],
            self.k,
            self.manifest["dimension"],
            where,
        )
        expected = self.manifest["base_model"]["sha256"]
        self.base_dir = Path(base_model or self.manifest["base_model"]["path"])
        actual = model_digest(self.base_dir)["sha256"]
        if actual != expected:
            raise CodealignError(
                f"{self.base_dir}: not the base model the adapters in {self.model_dir} were "
                f"trained on (sha256 {actual[:12]}, {where} says {expected[:12]})"
            )
        adapter_dirs = [self.model_dir / a["path"] for a in self.manifest["adapters"]]
        for i, adapter_dir in enumerate(adapter_dirs):
            check_adapter_dir(adapter_dir, expected, f"{where}: adapters[{i}]")
        if fallback_margin < 0:
            raise CodealignError(f"fallback margin must be >= 0, got {fallback_margin}")
        self.fallback_margin = float(fallback_margin)
        self.fallback_dir = None
        if fallback is not None and self.fallback_margin > 0 and self.k > 1:
            self.fallback_dir = k1_adapter(
                Path(fallback), expected, "the fallback of specialists.fallback_margin"
            )
        elif self.fallback_margin > 0 and self.k > 1:
            raise CodealignError(
                f"{self.model_dir}: a fallback margin of {self.fallback_margin:g} needs the "
                "K = 1 sft dir to fall back to"
            )
        names = [adapter_name(c) for c in range(self.k)]
        if self.fallback_dir is not None:
            adapter_dirs = [*adapter_dirs, self.fallback_dir]
            names.append(FALLBACK_NAME)
        self.tokenizer, base = load_causal_lm(self.base_dir, dtype)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        base.to(self.device)
        try:
            # low_cpu_mem_usage: adapter weights are created empty and filled from the file,
            # not initialised at random first (K times a transient copy, and the time).
            model = PeftModel.from_pretrained(
                base, adapter_dirs[0], adapter_name=names[0], low_cpu_mem_usage=True
            )
            for name, adapter_dir in zip(names[1:], adapter_dirs[1:], strict=True):
                model.load_adapter(adapter_dir, adapter_name=name, low_cpu_mem_usage=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CodealignError(f"{self.model_dir}: cannot load adapters: {first}") from None
        model.eval()
        self.model = model
        self.names = names
        self.gathered = GatheredLora.build(model, names)
        self._embed_cache_dir = embed_cache_dir
        self._embedder = None

    # -------------------------------------------------------------------- routing

    def _embedder_for(self):
        from codealign.lm.embedding import Embedder, model_identity
        from codealign.specialists.cluster import embed_params_from_spec

        if self._embedder is None:
            spec = self.manifest["embedder"]
            where = f"{self.model_dir / 'router.json'}"
            params = embed_params_from_spec(spec, where)
            identity = model_identity(params.model)
            if spec.get("identity") not in (None, identity):
                raise CodealignError(
                    f"{where}: embedder '{params.model}' is not the one the clusters were fitted "
                    f"with (its files changed); re-run embed, cluster and sft"
                )
            self._embedder = Embedder(params, self._embed_cache_dir, progress=False)
        return self._embedder

    @property
    def adapters(self) -> int:
        """How many adapters may answer: K, and the generalist where it is loaded (index K)."""
        return len(self.names)

    def nearest(self, questions: Sequence[str]) -> tuple[list[int], list[float]]:
        """The nearest centroid of each question and its cosine margin (best minus second
        best; inf with one centroid), never the fallback."""
        from codealign.specialists.cluster import cosine_margins, nearest_centroid

        if self.k == 1:
            return [0] * len(questions), [float("inf")] * len(questions)
        vectors = self._embedder_for().embed(list(questions), desc="routing")
        if vectors.shape[1] != self.centroids.shape[1]:
            raise CodealignError(
                f"{self.model_dir / 'router.json'}: embedder gives dimension {vectors.shape[1]}, "
                f"the centroids have {self.centroids.shape[1]}"
            )
        labels, _ = nearest_centroid(vectors, self.centroids)
        margins = cosine_margins(vectors, self.centroids)
        return [int(c) for c in labels], [float(m) for m in margins]

    def route(self, questions: Sequence[str]) -> list[int]:
        """The adapter index of each question: its nearest centroid, or K (the generalist)
        where a fallback is loaded and the cosine margin is below `fallback_margin`."""
        labels, margins = self.nearest(questions)
        if self.fallback_dir is None:
            return labels
        return [
            self.k if m < self.fallback_margin else c for c, m in zip(labels, margins, strict=True)
        ]

    # -------------------------------------------------------------------- generation

    def sample(
        self,
        questions: Sequence[str],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_new_tokens: int = 256,
        batch_size: int = 32,
        seed: int = 0,
        clusters: Sequence[int] | None = None,
        mixed: bool = True,
        progress: bool = False,
        desc: str = "routed generation",
    ) -> tuple[list[int], list[list[str]]]:
        """The cluster of each question and `n` answers from its specialist.

        Temperature 0 is greedy (then `n` must be 1). `clusters` skips routing (tests,
        benchmarks, or a caller who routed already).
        """
        from codealign.lm.generation import generate

        if temperature == 0.0 and n != 1:
            raise ValueError("greedy decoding gives one answer per question; use n=1")
        clusters = list(clusters) if clusters is not None else self.route(questions)
        if any(not 0 <= c < self.adapters for c in clusters):
            raise ValueError(f"clusters must lie in [0, {self.adapters})")
        answers = generate(
            self.model,
            self.tokenizer,
            chat.render_all(self.tokenizer, questions),
            n=n,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            seed=seed,
            progress=progress,
            desc=desc,
            groups=clusters,
            select=self.through,
            mixed=mixed,
            add_special_tokens=False,
        )
        return clusters, answers

    @contextlib.contextmanager
    def through(self, clusters: Sequence[int]) -> Iterator[dict[str, Any] | None]:
        """Within the block, row i of a batch goes through adapter `clusters[i]`; yields the
        extra `generate` arguments that takes, if any."""
        names = [self.names[c] for c in clusters]
        if len(set(names)) == 1:
            # One adapter in the batch: the plain forward, without per-row dispatch.
            self.model.set_adapter(names[0])
            yield None
        elif self.gathered is not None:
            with self.gathered.rows(list(clusters)):
                yield None
        else:
            yield {"adapter_names": names}

    def generate(self, questions: Sequence[str], **kwargs: Any) -> list[tuple[int, str]]:
        """`(cluster, answer)` for each question (greedy unless `temperature` is given)."""
        clusters, answers = self.sample(questions, n=1, **kwargs)
        return [(c, a[0]) for c, a in zip(clusters, answers, strict=True)]

    # -------------------------------------------------------------------- introspection

    def parameter_counts(self) -> dict[str, int]:
        """Base parameters (held once) and adapter parameters (all K adapters)."""
        base = adapters = 0
        for name, parameter in self.model.named_parameters():
            if "lora_" in name:
                adapters += parameter.numel()
            else:
                base += parameter.numel()
        return {"base": base, "adapters": adapters}


def _read_questions(questions: tuple[str, ...]) -> list[str]:
    if questions:
        return list(questions)
    if sys.stdin.isatty():
        raise CodealignError("no question given (pass one as an argument or one per line on stdin)")
    return [line.strip() for line in sys.stdin if line.strip()]


_MODEL_OPTION = click.option(
    "--model",
    "model_dir",
    default="models/sft",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Directory with router.json and the adapters (the sft stage's out).",
)
_BASE_OPTION = click.option(
    "--base-model",
    type=click.Path(path_type=Path),
    default=None,
    help="Base model dir (default: the one router.json names; it must be the same model).",
)


@click.command("generate")
@_MODEL_OPTION
@_BASE_OPTION
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(0, 2))
@click.option("--max-new-tokens", default=256, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question.")
@click.argument("questions", nargs=-1)
def generate_command(
    model_dir: Path,
    base_model: Path | None,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    as_json: bool,
    questions: tuple[str, ...],
) -> None:
    """Answer QUESTIONS with the routed specialists; print each one's cluster and answer.

    With no QUESTIONS, reads one question per line from stdin.

        codealign generate --model models/sft "Write a function that reverses a list."
    """
    asked = _read_questions(questions)
    router = Router(model_dir, base_model=base_model)
    answers = router.generate(
        asked, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    for i, (question, (cluster, answer)) in enumerate(zip(asked, answers, strict=True)):
        if as_json:
            click.echo(json.dumps({"question": question, "cluster": cluster, "answer": answer}))
            continue
        if i:
            click.echo()
        click.echo(f"cluster {cluster} of {router.k}")
        click.echo(answer.rstrip("\n"))


@click.command("route")
@_MODEL_OPTION
@click.argument("questions", nargs=-1)
def route_command(model_dir: Path, questions: tuple[str, ...]) -> None:
    """Print the cluster (specialist) each of QUESTIONS is routed to, without generating."""
    from codealign.lm.embedding import Embedder
    from codealign.specialists.cluster import (
        embed_params_from_spec,
        nearest_centroid,
        read_centroids,
    )

    asked = _read_questions(questions)
    manifest = read_router_manifest(model_dir)
    where = str(Path(model_dir) / "router.json")
    centroids = read_centroids(
        Path(model_dir) / manifest["centroids"], manifest["k"], manifest["dimension"], where
    )
    if manifest["k"] == 1:
        labels = np.zeros(len(asked), dtype=np.int64)
    else:
        embedder = Embedder(embed_params_from_spec(manifest["embedder"], where), progress=False)
        labels, _ = nearest_centroid(embedder.embed(asked), centroids)
    for question, label in zip(asked, labels, strict=True):
        click.echo(f"{int(label)}\t{question}")
