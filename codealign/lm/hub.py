"""Hub models fetched once into a DVC-tracked directory, then loaded offline.

The `fetch` stage downloads every hub model the profile names (`base_model.name`,
`embed.model`, `synth.hf_model` when the `hf` backend is on) with
`huggingface_hub.snapshot_download` into `models/hub/<org>--<name>/`, and writes
`models/hub/fetched.json` (name -> directory, revision). DVC caches the directory, so
`dvc push` shares the weights and a clone gets them with `dvc pull`, no hub access.
Every later stage resolves a hub name to that directory with `local_model` and loads it
with `local_files_only`; a name that was never fetched ends in one line naming the
command that fetches it. Names that are not hub ids (`tiny`, `bundled:...`, an existing
local directory) need no fetch, so the default profile's fetch writes only the manifest.

`fetch.tiny_from_config: true` (the CPU rehearsal of the paper profile only) builds each
model instead of downloading it: the model's real `config.json`, vendored under
`codealign/lm/hub_configs/`, with its architecture kept and its sizes shrunk, random
weights, and a tokenizer trained here on the vendored MBPP and Code Alpaca text. A
causal LM gets a byte-level BPE tokenizer and the project's chat template; an embedder
(BERT, as e5) a lowercase WordPiece tokenizer and a sentence-transformers mean-pooling
head, as e5-base-v2 has.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from codealign.errors import CodealignError

log = logging.getLogger(__name__)

HUB_DIR = Path("models/hub")
FETCH_COMMAND = "dvc repro fetch"

# A hub repo id: "org/name", nothing that looks like a path on disk.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str) -> bool:
    """True for 'org/name' where neither the path nor its first part (`models/`) is local."""
    if not _HUB_ID.match(name):
        return False
    return not (Path(name).exists() or Path(name.split("/")[0]).is_dir())


def hub_dir(name: str, root: Path = HUB_DIR) -> Path:
    """Where `fetch` puts the hub model `name`: models/hub/<org>--<name>."""
    return root / name.replace("/", "--")


def local_model(name: str, key: str, root: Path = HUB_DIR) -> str:
    """The local directory a model param names, fetching nothing.

    A hub id resolves to its fetched directory, which must exist; anything else (a local
    directory, `tiny`, `bundled:...`) is returned as it is, for the caller to handle.
    """
    if not is_hub_id(name):
        return name
    target = hub_dir(name, root)
    if not (target / "config.json").is_file():
        raise CodealignError(
            f"{key}: '{name}' is not fetched ({target} is missing); run `{FETCH_COMMAND}` "
            "once with network (or `dvc pull` it)"
        )
    return str(target)
