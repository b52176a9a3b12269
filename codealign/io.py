"""Reading and writing the files stages exchange, atomically and with clear errors.

Every writer here writes to a temporary path beside the target and renames it into
place, so a crash or a kill never leaves a half-written out. Every reader names the
file and line of the first malformed record.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from codealign.errors import CodealignError


def _open_text(path: Path, mode: str):
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield each JSON object of a `.jsonl` or `.jsonl.gz` file; blank lines are skipped.

    Raises CodealignError naming `file:line` for a missing file, invalid UTF-8,
    invalid JSON, or a line that is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise CodealignError(f"{path}: file not found")
    try:
        with _open_text(path, "r") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CodealignError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
                if not isinstance(record, dict):
                    kind = type(record).__name__
                    raise CodealignError(f"{path}:{lineno}: expected a JSON object, got {kind}")
                yield record
    except UnicodeDecodeError as exc:
        raise CodealignError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    except (OSError, EOFError) as exc:
        raise CodealignError(f"{path}: cannot read: {exc}") from None


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSONL file (see `iter_jsonl`)."""
    return list(iter_jsonl(path))


def require_fields(
    record: dict[str, Any], fields: dict[str, type | tuple[type, ...]], where: str
) -> None:
    """Check that `record` has each field with the given type; `where` is `file:line`."""
    for name, kind in fields.items():
        if name not in record:
            raise CodealignError(f"{where}: missing field '{name}'")
        value = record[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise CodealignError(
                f"{where}: field '{name}' must be {names}, got {type(value).__name__}"
            )


def is_main_process() -> bool:
    """True unless this is a rank > 0 of a distributed launch (`torchrun`, `accelerate
    launch`): only rank 0 writes outs; the other ranks train with it and discard theirs."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it onto `target`.

    Works for files and directories alike: whatever the caller creates at the yielded
    path replaces `target` in one rename. On an exception the temporary path is removed
    and `target` is left as it was. Staging dirs left by a killed earlier run of the
    same target are removed first (one writer per target, as DVC ensures). In a
    distributed run only rank 0 writes `target` (`is_main_process`).
    """
    target = Path(target)
    if not is_main_process():
        # A rank > 0 of a distributed run: the same work, written somewhere private.
        scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}.rank"))
        try:
            yield scratch / target.name
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Staging dirs a killed run of this target left behind (SIGKILL skips cleanup).
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    staged = tmp / target.name
    try:
        yield staged
        if not staged.exists():
            raise RuntimeError(f"nothing was written for {target}")
        if target.is_dir() and not target.is_symlink():
            old = tmp / (target.name + ".old")
            os.replace(target, old)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(staged, target)
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cannot_write(target: Path, exc: OSError) -> CodealignError:
    return CodealignError(f"{public_path(target)}: cannot write: {exc.strerror or exc}")


_STAGING = re.compile(r"\.([^/]+)\.[A-Za-z0-9_]+\.tmp/\1(?=/|$)")


def public_path(path: str | os.PathLike) -> str:
    """`path` as the user will see it: staging dirs of `atomic_path` folded away
    (`data/.cluster.x1y2.tmp/cluster/a.jsonl` -> `data/cluster/a.jsonl`)."""
    return _STAGING.sub(r"\1", Path(path).as_posix())


def save_npy(path_or_handle: str | os.PathLike | Any, array: Any) -> None:
    """`np.save`, except that a failed write raises.

    `np.save` writes through C `fwrite` and ignores a short write: on a full disk or past a
    file-size limit it leaves a truncated `.npy` and returns normally. The array is
    serialised in memory and written with Python's `write`, which raises `OSError`.
    """
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    if hasattr(path_or_handle, "write"):
        path_or_handle.write(buffer.getvalue())
    else:
        with open(path_or_handle, "wb") as handle:
            handle.write(buffer.getvalue())


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSONL atomically (gzip when the name ends in `.gz`); return the count."""
    count = 0
    with atomic_path(path) as tmp, _open_text(tmp, "w") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
    return count


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write one JSON document atomically, indented and with sorted keys (stable diffs)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    """Read one JSON document, naming the file on any error."""
    path = Path(path)
    if not path.is_file():
        raise CodealignError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CodealignError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise CodealignError(f"{path}: not valid UTF-8 ({exc.reason})") from None


def canonical_adapter_configs(directory: str | os.PathLike) -> None:
    """Sort the module lists of every `adapter_config.json` under `directory`, in place.

    PEFT keeps `target_modules` as a set and writes it in hash order, which changes
    between processes; sorted, the same adapter gives the same bytes (and DVC hash).
    """
    for path in sorted(Path(directory).rglob("adapter_config.json")):
        config = json.loads(path.read_text(encoding="utf-8"))
        for key in ("target_modules", "modules_to_save", "exclude_modules"):
            value = config.get(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                config[key] = sorted(value)
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
