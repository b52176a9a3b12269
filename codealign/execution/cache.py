"""Expected values computed from canonical solutions, cached on disk by content.

HumanEval+ and MBPP+ give inputs without outputs: the expected value of each input is
what the canonical solution returns, computed in the sandbox. `ExpectedCache` keeps those
values (as the encoded results the canonical solution sent, which a correct sample's
results match byte for byte) and each call's time in one file per problem, named by a
SHA-256 of everything that decides them (the canonical program, the entry point, the
encoded inputs, the Python version and this format's version), so a second run on the
same benchmark pays only for its samples, and an edited problem is simply a new key.

The directory is `$CODEALIGN_CACHE_DIR`, else `$XDG_CACHE_HOME/codealign`, else
`~/.cache/codealign`, with the entries under `expected/`. Writes go to a temporary file
in the same directory and are renamed into place, so concurrent runs and kills never
leave a partial entry visible; an entry that fails to read or to validate is ignored
and recomputed.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from codealign.execution import wire
from codealign.execution.verdicts import Expected
from codealign.problems import Problem

log = logging.getLogger(__name__)

FORMAT = 3  # 3: values are the canonical solution's encoded results, as JSON text


_NO_KWARGS = "\x00codealign: no keyword arguments\x00"


@functools.lru_cache(maxsize=4096)
def calls_json(problem: Problem) -> bytes:
    """The JSON text of a problem's encoded argument lists, as every sample's job carries
    them (computed once per problem)."""
    no_kwargs = wire.dumps(wire.encode({}))[:-1]
    variants = sum(len(case.variants) for case in problem.cases)
    if not any(kwargs for case in problem.cases for _, kwargs in case.variants):
        # the whole problem in one go, an empty kwargs as a marker string replaced after
        calls = [[[list(args), _NO_KWARGS] for args, _ in case.variants] for case in problem.cases]
        marker = wire.dumps(_NO_KWARGS)[:-1]
        with contextlib.suppress(wire.Unencodable):
            text = wire.dumps_trusted(calls)
            if text.count(marker) == variants:
                return text.replace(marker, no_kwargs)
    parts = []
    for case in problem.cases:
        variants = [
            b"["
            + wire.dumps_trusted(list(args))
            + b","
            + (wire.dumps_trusted(kwargs) if kwargs else no_kwargs)
            + b"]"
            for args, kwargs in case.variants
        ]
        parts.append(b"[" + b",".join(variants) + b"]")
    return b"[" + b",".join(parts) + b"]"


def default_cache_dir() -> Path:
    """Where cached expected values live unless a directory is given."""
    configured = os.environ.get("CODEALIGN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codealign"


def problem_key(problem: Problem) -> str:
    """The SHA-256 of everything that decides a problem's expected values."""
    content = {
        "format": FORMAT,
        "python": list(sys.version_info[:2]),
        "program": problem.canonical_program,
        "entry": problem.entry_point,
    }
    text = json.dumps(content, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(text.encode("ascii"))
    digest.update(b"\n")
    digest.update(calls_json(problem))
    return digest.hexdigest()


class ExpectedCache:
    """One gzip'd JSON file per problem: `{format, key, values, times}`, each value the
    JSON text of the canonical solution's encoded result (null: it gave none)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()
        self.entries = self.directory / "expected"

    def _path(self, key: str) -> Path:
        return self.entries / f"{key}.json.gz"

    def has(self, problem: Problem) -> bool:
        """Whether an entry for the problem exists (it may still prove unreadable)."""
        return self._path(problem_key(problem)).is_file()

    def load(self, problem: Problem) -> tuple[Expected, list] | None:
        """(values, times) from the cache, or None if absent or unusable. Values are
        decoded only when a sample needs them (`verdicts.Expected`)."""
        key = problem_key(problem)
        path = self._path(key)
        try:
            with gzip.open(path, "rb") as handle:
                data = json.loads(handle.read())
            n = len(problem.cases)
            if type(data) is not dict or data.get("format") != FORMAT or data.get("key") != key:
                raise ValueError("not an entry for this problem")
            values, times = data["values"], data["times"]
            if type(values) is not list or len(values) != n:
                raise ValueError("wrong number of values")
            if not all(v is None or type(v) is str for v in values):
                raise ValueError("malformed values")
            if type(times) is not list or len(times) != n:
                raise ValueError("wrong number of times")
            if not all(type(t) in (int, float) and 0 <= t < 1e6 for t in times):
                raise ValueError("malformed times")
            raw = [None if v is None else v.encode("ascii") for v in values]
            return Expected(raw), [float(t) for t in times]
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("%s: ignoring an unreadable cache entry (%s)", path, exc)
            return None

    def store(self, problem: Problem, values: Expected, times: list | None) -> None:
        """Write one problem's entry atomically; a cache that cannot be written is skipped."""
        key = problem_key(problem)
        encoded = [None if v is None else v.decode("ascii") for v in values.raw]
        data = {"format": FORMAT, "key": key, "values": encoded, "times": times or []}
        if times is None:
            data["times"] = [0.0] * len(encoded)
        body = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        tmp = None
        try:
            self.entries.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.entries)
            with (
                os.fdopen(fd, "wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1) as handle,
            ):
                handle.write(body)
            os.replace(tmp, self._path(key))
            tmp = None
        except OSError as exc:
            log.warning("%s: cannot write the expected-value cache (%s)", self.entries, exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
