"""The `fetch` stage's work: download or build the profile's hub models (codealign.lm.hub).

Kept apart from the resolution in `codealign.lm.hub`, which every model-loading stage
imports, so that only `fetch` depends on the download and tiny-build code.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError
from codealign.lm.hub import hub_dir, is_hub_id
from codealign.params.lm import FetchParams

log = logging.getLogger(__name__)

MANIFEST = "fetched.json"
CONFIGS_DIR = Path(__file__).parent / "hub_configs"

# Sizes a "tiny from config" model gets; everything else comes from the real config.
TINY_SIZES = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}
TINY_VOCAB = 1024


def profile_models(params: Any) -> dict[str, str]:
    """The hub models a profile needs, by the param that names them."""
    wanted = {
        "base_model.name": params["base_model"].name,
        "embed.model": params["embed"].model,
    }
    synth = params["synth"]
    if synth.backend == "hf":
        wanted["synth.hf_model"] = synth.hf_model
    return {key: name for key, name in wanted.items() if is_hub_id(name)}


def download(
    name: str,
    target: Path,
    revision: str | None = None,
    *,
    endpoint: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> str:
    """Put hub model `name` into `target`; return the commit it came from.

    A snapshot already in the local Hugging Face cache (`cache_dir`, default
    ~/.cache/huggingface) is copied from there with no network; otherwise the files are
    downloaded straight into `target` (`snapshot_download(local_dir=...)`), unless
    `offline`, which makes a miss an error.
    """
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        cached = snapshot_download(
            name, revision=revision, cache_dir=cache_dir, local_files_only=True
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        cached = None
    if cached is not None:
        log.info("%s: copying the snapshot in the local Hugging Face cache", name)
        shutil.copytree(cached, target, symlinks=False)
        commit = Path(cached).name
    elif offline:
        raise CodealignError(
            f"fetch: '{name}' is not in the local Hugging Face cache and fetching is offline"
        )
    else:
        # The Makefile exports HF_HUB_OFFLINE=1 for every stage; this is the one step
        # that goes online, and asks for it explicitly.
        constants.HF_HUB_OFFLINE = False
        try:
            snapshot_download(name, revision=revision, local_dir=target, endpoint=endpoint)
            commit = HfApi(endpoint=endpoint).model_info(name, revision=revision).sha
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            raise CodealignError(f"fetch: cannot download '{name}': {first}") from None
    if not (target / "config.json").is_file():
        raise CodealignError(f"fetch: '{name}' has no config.json; is it a transformers model?")
    return commit or revision or "main"


def _corpus(raw_dir: Path) -> list[str]:
    """Text a rehearsal tokenizer is trained on: MBPP problems and code, Code Alpaca."""
    from codealign.curation.datasets import load_code_alpaca, load_mbpp

    texts = []
    for record in load_mbpp(raw_dir=raw_dir):
        texts += [record["text"], record["code"], *record["test_list"]]
    for record in load_code_alpaca(raw_dir):
        texts += [str(v) for v in record.values() if isinstance(v, str) and v]
    return texts


def vendored_config(name: str) -> dict[str, Any]:
    path = CONFIGS_DIR / name.replace("/", "--") / "config.json"
    if not path.is_file():
        known = ", ".join(sorted(p.name.replace("--", "/") for p in CONFIGS_DIR.iterdir()))
        raise CodealignError(
            f"fetch.tiny_from_config: no vendored config for '{name}' (vendored: {known})"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def shrink(config: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """The real config with its sizes replaced by TINY_SIZES (keys it has only).

    Grouped-query attention stays grouped: a model with fewer key/value heads than query
    heads (Qwen2.5-Coder: 2 for 12) keeps at most that share (1 for the 4 tiny heads), so
    its k_proj and v_proj stay narrower than q_proj, as in the real model.
    """
    small = {key: value for key, value in config.items() if not key.startswith("_")}
    small.update({k: v for k, v in TINY_SIZES.items() if k in config})
    heads, kv = config.get("num_attention_heads"), config.get("num_key_value_heads")
    if heads and kv and kv < heads:
        tiny_heads = small["num_attention_heads"]
        fits = [
            d for d in range(1, tiny_heads) if tiny_heads % d == 0 and d * heads <= kv * tiny_heads
        ]
        small["num_key_value_heads"] = max(fits, default=1)
    small["vocab_size"] = vocab_size
    return small


def build_tiny(name: str, target: Path, texts: list[str], seed: int) -> None:
    """A random tiny model of `name`'s architecture, with a tokenizer trained on `texts`."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    real = vendored_config(name)
    architecture = real["architectures"][0]
    torch.manual_seed(seed)
    if architecture.endswith("ForCausalLM"):
        from codealign.pretraining.base_model import train_tokenizer

        tokenizer = train_tokenizer(texts, TINY_VOCAB)
        config = shrink(real, len(tokenizer))
        config.update(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
    else:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
        from tokenizers import BertWordPieceTokenizer
        from transformers import BertTokenizerFast

        core = BertWordPieceTokenizer(lowercase=True)
        core.train_from_iterator(texts, vocab_size=TINY_VOCAB, show_progress=False)
        tokenizer = BertTokenizerFast(tokenizer_object=core._tokenizer, do_lower_case=True)
        tokenizer.model_max_length = real.get("max_position_embeddings", 512)
        model = AutoModel.from_config(AutoConfig.for_model(**shrink(real, core.get_vocab_size())))
        if type(model).__name__ != architecture:
            raise CodealignError(f"fetch: built {type(model).__name__}, expected {architecture}")
        staging = target.with_name(target.name + ".transformer")
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        # e5 embeds by mean pooling over the tokens (its 1_Pooling/config.json).
        encoder = SentenceTransformer(
            modules=[Transformer(str(staging)), Pooling(model.config.hidden_size, "mean")],
            device="cpu",
        )
        encoder.save(str(target))
        for path in sorted(staging.iterdir()):
            path.unlink()
        staging.rmdir()


def fetch_all(
    params: Any, out_dir: Path, raw_dir: Path | None = None, **download_args: Any
) -> dict[str, Any]:
    """Fetch (or build) every hub model the profile names into `out_dir`; return the manifest."""
    fetch: FetchParams = params["fetch"]
    models = profile_models(params)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"tiny_from_config": fetch.tiny_from_config, "models": {}}
    texts = _corpus(raw_dir) if fetch.tiny_from_config and models else []
    for key, name in sorted(models.items(), key=lambda kv: kv[1]):
        if name in manifest["models"]:
            manifest["models"][name]["params"].append(key)
            continue
        target = hub_dir(name, out_dir)
        if fetch.tiny_from_config:
            log.info("%s: building %s tiny from its vendored config", key, name)
            build_tiny(name, target, texts, params.seed)
            revision = "tiny-from-config"
        else:
            log.info("%s: downloading %s", key, name)
            revision = download(name, target, fetch.revision, **download_args)
        # snapshot_download keeps its own bookkeeping under .cache; DVC need not track it.
        cache = target / ".cache"
        if cache.is_dir():
            shutil.rmtree(cache)
        manifest["models"][name] = {
            "dir": str(hub_dir(name)),
            "revision": revision,
            "params": [key],
        }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
