"""Section of the synth stage: `synth` (backend, self-instruct loop, keyword strategies, API knobs).

`params/paper.yaml` points `backend: openai` at an OpenAI-compatible endpoint; the key is
read from the environment variable named by `openai_api_key_env`, never from params
(params are versioned in git).
"""

from __future__ import annotations

from dataclasses import dataclass

from codealign.errors import CodealignError
from codealign.params.core import Section, param

BACKENDS = ("tinyworld", "hf", "openai")


@dataclass(frozen=True)
class SynthParams(Section):
    """Knobs of the synth stage: the two synthetic-generation methods and their backends."""

    backend: str = param("tinyworld", choices=BACKENDS, doc="who answers the prompts")
    # Method 1: self-instruct from S1.
    cycles: int = param(2, ge=0, doc="self-instruct cycles; S1* = S1 + every cycle's output")
    items_per_cycle: int = param(75, ge=0, doc="self-instruct requests per cycle")
    few_shot: int = param(3, ge=1, doc="S1-pool examples shown per self-instruct request")
    # Method 2: keyword strategies from S2 (sizes are requests; refusals and junk are dropped).
    s3_requests: int = param(300, ge=0, doc="strategy 1: two examples + n vocabulary words")
    s4_requests: int = param(150, ge=0, doc="strategy 2: one example, the same keywords")
    s5_requests: int = param(300, ge=0, doc="strategy 3: one example, k* shown, k^ asked")
    n_min: int = param(5, ge=1, doc="strategy 1: n ~ U(n_min, n_max) keywords")
    n_max: int = param(15, ge=1, doc="strategy 1: upper bound of n")
    m_min: int = param(0, ge=0, doc="strategy 3: m*, m^ ~ U(m_min, m_max) words")
    m_max: int = param(5, ge=0, doc="strategy 3: upper bound of m*, m^")
    # Generation.
    temperature: float = param(0.7, ge=0, le=2, doc="sampling temperature of every request")
    max_tokens: int = param(512, ge=1, doc="tokens per answer")
    # Acceptance.
    require_tests: bool = param(True, doc="reject code that carries no assert of its own")
    verify: bool = param(True, doc="run each item's asserts in the sandbox; failures rejected")
    sandbox_workers: int = param(2, ge=1, doc="sandbox worker processes for verify")
    sandbox_timeout: float = param(3.0, gt=0, doc="seconds per item (all its asserts)")
    cache_dir: str = param(".cache/synth", doc="response cache (hf, openai); not a DVC out")
    # backend: openai (any OpenAI-compatible /v1/chat/completions endpoint).
    openai_base_url: str = param("https://api.openai.com/v1", doc="up to and including /v1")
    openai_model: str = param("gpt-4o-mini", doc="model name sent with every request")
    openai_api_key_env: str = param("OPENAI_API_KEY", doc="environment variable with the key")
    openai_concurrency: int = param(8, ge=1, le=1024, doc="requests in flight at once")
    openai_max_retries: int = param(5, ge=0, doc="retries on 429, 5xx and connection errors")
    openai_backoff: float = param(1.0, ge=0, doc="first retry delay; doubles per retry")
    openai_backoff_max: float = param(60.0, ge=0, doc="cap on one retry delay")
    openai_request_budget: int | None = param(
        None, ge=1, doc="most HTTP requests per run, retries included (null: no limit)"
    )
    openai_timeout: float = param(120.0, gt=0, doc="seconds per HTTP request")
    # backend: hf (a local causal LM directory).
    hf_model: str = param("models/base_model", doc="a local HF causal LM directory")
    hf_batch_size: int = param(8, ge=1, doc="prompts per generate call")

    def validate(self, prefix: str) -> None:
        if self.n_min > self.n_max:
            raise CodealignError(
                f"{prefix}.n_min ({self.n_min}) must not exceed {prefix}.n_max ({self.n_max})"
            )
        if self.m_min > self.m_max:
            raise CodealignError(
                f"{prefix}.m_min ({self.m_min}) must not exceed {prefix}.m_max ({self.m_max})"
            )
        if self.openai_backoff_max < self.openai_backoff:
            raise CodealignError(
                f"{prefix}.openai_backoff_max ({self.openai_backoff_max}) must be at least "
                f"{prefix}.openai_backoff ({self.openai_backoff})"
            )
        if self.backend == "openai":
            if not self.openai_base_url.startswith(("http://", "https://")):
                raise CodealignError(
                    f"{prefix}.openai_base_url must start with http:// or https://, "
                    f"got {self.openai_base_url!r}"
                )
            if not self.openai_model.strip():
                raise CodealignError(f"{prefix}.openai_model must name a model for backend openai")
        if self.backend == "hf" and not self.hf_model.strip():
            raise CodealignError(f"{prefix}.hf_model must name a model directory for backend hf")
        if self.backend != "tinyworld" and not self.cache_dir.strip():
            raise CodealignError(
                f"{prefix}.cache_dir must be set for backend {self.backend}: without it a "
                "crash or a rerun would pay for every request again"
            )
