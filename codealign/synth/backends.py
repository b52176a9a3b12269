"""Generation backends behind one interface: `Backend.complete(requests) -> responses`.

A `Request` carries chat messages, generation params, a per-request seed and `meta`
(the structured request the prompt was rendered from). A `Response` carries the answer
text, or `error` saying why there is none (`budget_exhausted`, `api_error`); the
pipeline counts those like any other rejection.

- `TinyWorldBackend` (offline default) cannot read English, so it answers from `meta`:
  keyword requests with `tinyworld.world.compose`, which refuses keyword sets no single
  template expresses; self-instruct requests with a new task of an example's family and
  level. It writes its answer in the same response format the prompts ask for, so the
  same parser reads every backend.
- `HFBackend` runs any local causal LM directory, batched, through its chat template.
- `OpenAIBackend` posts to any OpenAI-compatible `/v1/chat/completions` endpoint with a
  concurrency limit, retries with exponential backoff on 429, 5xx and connection errors,
  and a request budget.

`hf` and `openai` answers go to a `ResponseCache` (SQLite, one row per answer, committed
as each answer arrives) keyed by backend, model, messages, temperature, max_tokens and
the request seed, so a rerun or a crash midway never pays for an answer twice. The seed
is part of the key because two identical prompts sampled at temperature > 0 are two
different draws, not one.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import random
import socket
import sqlite3
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codealign.errors import CodealignError
from codealign.params.synth import SynthParams

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger(__name__)

Store = Callable[[int, "Response"], None]


@dataclass(frozen=True)
class Request:
    """One generation request; `meta` is what the prompt was rendered from."""

    id: str
    messages: tuple[dict[str, str], ...]
    temperature: float
    max_tokens: int
    seed: int
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def prompt(self) -> str:
        return "\n\n".join(m["content"] for m in self.messages)


@dataclass(frozen=True)
class Response:
    """An answer (`text`), or why there is none (`error`, `detail`)."""

    text: str | None
    error: str | None = None
    detail: str = ""
    cached: bool = False


class ResponseCache:
    """Answers on disk by key, in SQLite: each `put` is committed before it returns."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL survives a crash or kill of this process (what resuming
            # needs) without an fsync per answer; only a power cut may lose the last few.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, text BLOB)")
        except (OSError, sqlite3.Error) as exc:
            raise CodealignError(f"{self.path}: cannot open the response cache: {exc}") from None
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0]).decode("utf-8", "surrogatepass")

    def put(self, key: str, text: str) -> None:
        # Stored as bytes with lone surrogates kept, so that an answer that was not valid
        # UTF-8 is rejected as such again when a rerun reads it from here.
        blob = text.encode("utf-8", "surrogatepass")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, blob))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Backend:
    """Answers requests in order; subclasses implement `_complete` for cache misses."""

    name = "backend"

    def __init__(self, model: str = "", cache: ResponseCache | None = None) -> None:
        self.model = model
        self.cache = cache
        self.stats = {"requests": 0, "cache_hits": 0}

    def cache_key(self, request: Request) -> str:
        key = {
            "backend": self.name,
            "model": self.model,
            "messages": list(request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def complete(
        self, requests: Sequence[Request], *, progress: bool = True, desc: str = "synth"
    ) -> list[Response]:
        """One response per request, in order; cached answers are not asked for again."""
        results: list[Response | None] = [None] * len(requests)
        misses: list[int] = []
        for index, request in enumerate(requests):
            text = self.cache.get(self.cache_key(request)) if self.cache else None
            if text is None:
                misses.append(index)
            else:
                results[index] = Response(text, cached=True)
        self.stats["requests"] += len(requests)
        self.stats["cache_hits"] += len(requests) - len(misses)
        if len(misses) < len(requests):
            log.info(
                "%s: %d of %d answers from the cache",
                desc,
                len(requests) - len(misses),
                len(requests),
            )

        def store(position: int, response: Response) -> None:
            index = misses[position]
            results[index] = response
            if self.cache is not None and response.text is not None:
                self.cache.put(self.cache_key(requests[index]), response.text)

        if misses:
            from tqdm.auto import tqdm

            with tqdm(total=len(misses), desc=desc, unit="req", disable=not progress) as bar:
                self._complete([requests[i] for i in misses], store, bar)
        return [r if r is not None else Response(None, "api_error", "no answer") for r in results]

    def _complete(self, requests: list[Request], store: Store, bar: tqdm) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


# ---- tinyworld ---------------------------------------------------------------------------


def format_answer(question: str, code: str, keywords: Sequence[str]) -> str:
    """An answer in the response format every synth prompt asks for."""
    return (
        f"### Question\n{question.strip()}\n### Code\n```python\n{code.rstrip()}\n```\n"
        f"### Keywords\n{', '.join(keywords)}\n"
    )


class TinyWorldBackend(Backend):
    """Answers with tiny-world tasks; see the module docstring.

    `known_prompts` are function prompts (signature + docstring) never to produce again,
    typically every seed, pool and tinyeval task; what it produces joins them, so the
    backend never answers with an exact copy of a task it already knows.
    """

    name = "tinyworld"

    def __init__(self, known_prompts: Sequence[str] = ()) -> None:
        super().__init__(model="tinyworld")
        from codealign.tinyworld.world import text_hash

        self._known = {text_hash(p) for p in known_prompts}

    def answer(self, request: Request) -> str:
        from codealign.tinyworld.world import compose, text_hash

        rng = random.Random(request.seed)
        meta = request.meta
        if meta.get("method") == "self_instruct":
            task = self._in_style_of(meta.get("examples") or [], rng)
            what = "the examples' family and level"
        else:
            task = compose(meta.get("keywords") or [], rng, exclude=self._known)
            what = "the keywords " + ", ".join(meta.get("keywords") or [])
        if task is None:
            return f"REFUSE: no new task of this world expresses {what}."
        self._known.add(text_hash(task.prompt))
        return format_answer(
            task.instruction, task.code + "\n" + "\n".join(task.tests), task.keywords
        )

    def _in_style_of(self, examples: list[dict[str, Any]], rng: random.Random):
        from codealign.tinyworld.templates import TEMPLATES
        from codealign.tinyworld.world import instantiate, text_hash

        if not examples:
            return None
        example = rng.choice(examples)
        wanted = set(example.get("keywords") or [])
        # The example's template is the one sharing the most keywords (ties: the first).
        nearest = max(TEMPLATES, key=lambda t: len(wanted & set(t.keywords)))
        level = example.get("difficulty") or nearest.level
        same = [t for t in TEMPLATES if t.family == nearest.family and t.level == level]
        candidates = same or [t for t in TEMPLATES if t.family == nearest.family]
        for _ in range(20):
            template = rng.choice(candidates)
            task = instantiate(template, template.constants(rng), rng, split="synthetic")
            if text_hash(task.prompt) not in self._known:
                return task
        return None

    def _complete(self, requests: list[Request], store: Store, bar: tqdm) -> None:
        for position, request in enumerate(requests):
            store(position, Response(self.answer(request)))
            bar.update(1)


# ---- hf ----------------------------------------------------------------------------------


class HFBackend(Backend):
    """A local causal LM directory, sampled in batches through its chat template."""

    name = "hf"

    def __init__(self, path: str, batch_size: int = 8, cache: ResponseCache | None = None):
        super().__init__(model=str(Path(path).resolve()), cache=cache)
        self.path = Path(path)
        self.batch_size = batch_size
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from codealign.lm.generation import load_causal_lm

            self._loaded = load_causal_lm(self.path)
        return self._loaded

    def render(self, tokenizer, request: Request, limit: int | None) -> str:
        messages = list(request.messages)
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            text = request.prompt + "\n\n"
        if limit is not None:
            # A prompt longer than the model's context keeps its end, where the request is.
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            room = max(1, limit - request.max_tokens)
            if len(ids) > room:
                text = tokenizer.decode(ids[-room:])
        return text

    def _complete(self, requests: list[Request], store: Store, bar: tqdm) -> None:
        from codealign.lm.generation import generate

        tokenizer, model = self._load()
        limit = getattr(model.config, "max_position_embeddings", None)
        groups: dict[tuple[float, int], list[int]] = {}
        for position, request in enumerate(requests):
            groups.setdefault((request.temperature, request.max_tokens), []).append(position)
        for (temperature, max_tokens), positions in groups.items():
            for start in range(0, len(positions), self.batch_size):
                chunk = positions[start : start + self.batch_size]
                prompts = [self.render(tokenizer, requests[p], limit) for p in chunk]
                texts = generate(
                    model,
                    tokenizer,
                    prompts,
                    n=1,
                    temperature=temperature,
                    max_new_tokens=max_tokens,
                    batch_size=self.batch_size,
                    seed=requests[chunk[0]].seed,
                    progress=False,
                )
                for position, (text,) in zip(chunk, texts, strict=True):
                    store(position, Response(text))
                bar.update(len(chunk))


# ---- openai ------------------------------------------------------------------------------

RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Unreachable(Exception):
    pass


class OpenAIBackend(Backend):
    """An OpenAI-compatible chat endpoint: `POST {base_url}/chat/completions`.

    Up to `concurrency` requests are in flight. A 429, a 5xx, a timeout or a dropped
    connection is retried up to `max_retries` times after `backoff * 2**attempt` seconds
    (capped at `backoff_max`, halved at random so that workers do not retry in step, and
    never shorter than a `Retry-After` header asks). Every HTTP request, retries included,
    spends one unit of `budget`; once it is spent the remaining requests come back with
    `error="budget_exhausted"`, and a rerun with a larger budget goes on from the cache.

    Errors that no retry can fix stop the run with one line: the endpoint refuses
    connections or cannot be resolved, the key is rejected (401/403), or the URL or model
    does not exist (404). Other 4xx answers reject that one request (`api_error`).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        budget: int | None = None,
        timeout: float = 120.0,
        cache: ResponseCache | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        super().__init__(model=model, cache=cache)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.budget = budget
        self.timeout = timeout
        self._sleep = sleep
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._warned_budget = False
        self.stats.update({"http_requests": 0, "retries": 0, "budget_exhausted": 0})
        host = urllib.parse.urlsplit(self.url).hostname or ""
        # A proxy from the environment must not swallow requests to a local server.
        handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _spend(self) -> bool:
        with self._lock:
            if self.budget is not None and self.stats["http_requests"] >= self.budget:
                self.stats["budget_exhausted"] += 1
                if not self._warned_budget:
                    self._warned_budget = True
                    log.warning(
                        "request budget of %d spent; the remaining requests are "
                        "rejected as budget_exhausted",
                        self.budget,
                    )
                return False
            self.stats["http_requests"] += 1
            return True

    def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url, data=body, headers=self._headers())
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                return exc.code, dict(exc.headers or {}), exc.read() or b""

    def _delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff * 2**attempt) * rng.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    def call(self, request: Request) -> Response:
        """One request with retries; raises CodealignError on what no retry can fix."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": list(request.messages),
                "temperature": request.temperature,
                "max_tokens": request.max_tokens,
                "seed": request.seed,
                "n": 1,
            }
        ).encode()
        rng = random.Random(request.seed)
        last = ""
        unreachable = False
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                return Response(None, "api_error", "cancelled")
            if not self._spend():
                return Response(None, "budget_exhausted", f"budget of {self.budget} requests")
            retry_after = None
            try:
                status, headers, payload = self._post(body)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}".rstrip(": ")
                unreachable = isinstance(
                    reason, ConnectionRefusedError | socket.gaierror | ConnectionResetError
                )
            else:
                if status == 200:
                    return self._answer(payload)
                last = f"HTTP {status}: {payload[:200].decode('utf-8', 'replace')}"
                unreachable = False
                if status in (401, 403):
                    raise CodealignError(
                        f"{self.url}: HTTP {status}, the endpoint rejected the key "
                        f"(set it in the environment variable {self.api_key_env})"
                    )
                if status == 404:
                    raise CodealignError(
                        f"{self.url}: HTTP 404; check synth.openai_base_url and "
                        f"synth.openai_model ({self.model!r})"
                    )
                if status not in RETRY_STATUSES and status < 500:
                    return Response(None, "api_error", last)
                with contextlib.suppress(TypeError, ValueError):
                    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
                    retry_after = float(value) if value is not None else None
            if attempt < self.max_retries:
                with self._lock:
                    self.stats["retries"] += 1
                # Waiting on the stop event lets a fatal error elsewhere end the wait early.
                (self._sleep or self._stop.wait)(self._delay(attempt, rng, retry_after))
        if unreachable:
            raise _Unreachable(last)
        return Response(None, "api_error", f"gave up after {self.max_retries + 1} attempts: {last}")

    def _answer(self, payload: bytes) -> Response:
        try:
            # surrogateescape keeps non-UTF-8 bytes visible to the parser, which rejects them.
            data = json.loads(payload.decode("utf-8", "surrogateescape"))
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Response(None, "api_error", f"malformed completion: {type(exc).__name__}")
        if content is not None and not isinstance(content, str):
            return Response(None, "api_error", "malformed completion: content is not text")
        return Response(content if content is not None else "")

    def _complete(self, requests: list[Request], store: Store, bar: tqdm) -> None:
        self._stop.clear()

        def run(position: int) -> None:
            store(position, self.call(requests[position]))
            bar.update(1)

        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="synth-openai")
        try:
            futures = [pool.submit(run, p) for p in range(len(requests))]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                self._stop.set()
        except BaseException:
            self._stop.set()  # Ctrl-C: in-flight requests end their current attempt and stop
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if failed is not None:
            exc = failed.exception()
            if isinstance(exc, _Unreachable):
                raise CodealignError(
                    f"{self.url}: cannot reach the endpoint ({exc}); check synth.openai_base_url"
                )
            raise exc


def make_backend(params: SynthParams, *, known_prompts: Sequence[str] = ()) -> Backend:
    """The backend `params.backend` names, with its response cache where it has one."""
    if params.backend == "tinyworld":
        return TinyWorldBackend(known_prompts)
    cache = ResponseCache(Path(params.cache_dir) / f"{params.backend}.sqlite")
    if params.backend == "hf":
        from codealign.lm.hub import local_model

        model = local_model(params.hf_model, "synth.hf_model")  # a hub id: models/hub/...
        return HFBackend(model, params.hf_batch_size, cache)
    return OpenAIBackend(
        params.openai_base_url,
        params.openai_model,
        api_key_env=params.openai_api_key_env,
        concurrency=params.openai_concurrency,
        max_retries=params.openai_max_retries,
        backoff=params.openai_backoff,
        backoff_max=params.openai_backoff_max,
        budget=params.openai_request_budget,
        timeout=params.openai_timeout,
        cache=cache,
    )
