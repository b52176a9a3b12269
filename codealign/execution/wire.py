"""Plain-data encoding of Python values, and message framing, for the sandbox's pipes.

Values cross a process boundary only as JSON built from a closed set of exact types:
None, bool, int, float, str, bytes, complex, list, tuple, dict, set and frozenset.
Lists of plain scalars are checked and written at C speed (`json` itself), and a list
of numbers with floats among it crosses as packed IEEE doubles (tag "f64", base64, with
the positions of its ints): bit-exact, without the cost of float-to-decimal text.
An instance of any other type, a subclass included (`class E(int)`), is encoded as an
opaque marker that carries only its type's name and equals nothing. Decoding never
calls code chosen by the sender: no pickle, no constructors, no `__eq__` of theirs.

This module imports only the standard library: the sandbox worker loads it by path.
"""

from __future__ import annotations

import binascii
import collections
import itertools
import json
import math
import operator
import re
import struct
import sys
from array import array

MAX_DEPTH = 64
# Items of one value: HumanEval+'s largest correct results have 1,000,006 (HumanEval/130)
# and 1,000,001 (HumanEval/100).
MAX_ITEMS = 4_000_000
MAX_FRAME = 64 * 1024 * 1024
# Report bytes one sample may send: HumanEval/15's correct results total 147 MB (137
# strings of up to 6.9 MB), HumanEval/130's 114 MB.
REPORT_CAP = 256 * 1024 * 1024
# One report line (one result): the largest correct one is 11.4 MB (HumanEval/130).
LINE_CAP = 64 * 1024 * 1024

_HEADER = struct.Struct(">I")
# Lists of at least this many numbers, floats among them, cross packed as IEEE doubles
# (tag "f64"): bit-exact, and about 20 times cheaper to write and read than decimal text.
PACK_MIN = 16
_EXACT_INT = 2**53  # ints a double holds exactly
_SMALL_INT = 2**62  # ints that cross as JSON numbers; larger ones as hex text
_BIG_ENDIAN = sys.byteorder == "big"


# Builtin types may cross as values (tests pass `int` to `isinstance`-style solutions).
BUILTIN_TYPES = {
    t.__name__: t
    for t in (
        int,
        float,
        str,
        bool,
        bytes,
        list,
        tuple,
        dict,
        set,
        frozenset,
        complex,
        type(None),
    )
}
# Standard-library containers that are plain data with another name; they cross as their
# base type, the way `Counter(...) == {...}` holds in Python.
_PLAIN_DICTS = (collections.Counter, collections.OrderedDict, collections.defaultdict)
_BUILTIN_TYPE_VALUES = tuple(BUILTIN_TYPES.values())


class Unencodable(Exception):
    """The value contains something that is not plain data (or is too deep or too big)."""


class TooLarge(Unencodable):
    """The value is plain data past a limit: too many items or nested too deeply."""


class Opaque:
    """Stands for a value that was not plain data; it equals nothing, itself included."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(f"a returned {self.type_name} object is not plain data")

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def encode(
    value,
    _type=type,
    _isfinite=math.isfinite,
    _repr=float.__repr__,
    _plain_dicts=_PLAIN_DICTS,
    _builtin_types=_BUILTIN_TYPE_VALUES,
    _dict_items=dict.items,
    _tuple_iter=tuple.__iter__,
    _flat=None,
):
    """Encode `value` as JSON-ready plain data; raise Unencodable on anything else.

    Default arguments bind the builtins this uses, so a program that patches `type`,
    `len` or `float.__repr__` in its own process cannot change how its values look.
    """
    budget = [MAX_ITEMS]
    flat = _flat or _flat_list

    def enc(v, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise TooLarge(f"value has over {MAX_ITEMS:,} items")
        if depth > MAX_DEPTH:
            raise TooLarge(f"value is nested over {MAX_DEPTH} deep")
        t = _type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            if -_SMALL_INT < v < _SMALL_INT:
                return v
            return {"t": "int", "v": int.__format__(v, "x")}
        if t is float:
            if _isfinite(v):
                return v
            return {"t": "float", "v": _repr(v)}
        if t is list:
            if len(v) >= PACK_MIN:
                done = flat(v)
                if done is not None:
                    budget[0] -= len(v)
                    if budget[0] < 0:
                        raise TooLarge(f"value has over {MAX_ITEMS:,} items")
                    return done
            return [enc(x, depth + 1) for x in v]
        if t is tuple:
            return {"t": "tuple", "v": [enc(x, depth + 1) for x in v]}
        if t is dict or t in _plain_dicts:
            return {
                "t": "dict",
                "v": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in _dict_items(v)],
            }
        if t is set or t is frozenset:
            return {"t": t.__name__, "v": [enc(x, depth + 1) for x in v]}
        if t is bytes:
            return {"t": "bytes", "v": bytes.hex(v)}
        if t is complex:
            return {"t": "complex", "v": [enc(v.real, depth + 1), enc(v.imag, depth + 1)]}
        if t.__bases__ == (tuple,) and _type(getattr(t, "_fields", None)) is tuple:
            return {"t": "tuple", "v": [enc(x, depth + 1) for x in _tuple_iter(v)]}
        if t is type and v in _builtin_types:
            return {"t": "type", "v": v.__name__}
        name = t.__name__ if _type(getattr(t, "__name__", None)) is str else "object"
        return {"t": "opaque", "v": name[:80]}

    try:
        return enc(value, 0)
    except RecursionError:
        raise TooLarge(f"value is nested over {MAX_DEPTH} deep") from None


_JSON_SCALARS = frozenset({str, bool, type(None)})
_INTS = frozenset({int, bool})
_NUMBERS = frozenset({int, float})


def _flat_list(
    v,
    _type=type,
    _set=set,
    _map=map,
    _list=list,
    _min=min,
    _max=max,
    _all=all,
    _abs=abs,
    _isfinite=math.isfinite,
    _scalars=_JSON_SCALARS,
    _ints=_INTS,
    _numbers=_NUMBERS,
):
    """A list whose items are all plain scalars, encoded at C speed: itself (copied) when
    its JSON text is its encoding, packed doubles ("f64") when it holds floats, or None
    when an item needs the general path (a big int, a non-finite float, a container)."""
    types = _set(_map(_type, v))
    if types <= _scalars:
        return _list(v)
    if types <= _ints:
        if _min(v) > -_SMALL_INT and _max(v) < _SMALL_INT:
            return _list(v)
        return None
    if float not in types or not types <= _numbers:
        return None
    try:
        if not _all(_map(_isfinite, v)):
            return None
    except OverflowError:  # an int too large for a double
        return None
    ints = []
    if int in types:
        ints = _list(
            itertools.compress(
                itertools.count(),
                _map(operator.is_, _map(_type, v), itertools.repeat(int)),
            )
        )
        if _max(_map(_abs, _map(v.__getitem__, ints))) > _EXACT_INT:
            return None
    packed = array("d", v)
    if _BIG_ENDIAN:
        packed.byteswap()
    return {"t": "f64", "v": [binascii.b2a_base64(packed.tobytes(), newline=False).decode(), ints]}


def _unpack_f64(v) -> list:
    """The list a "f64" value stands for; ValueError if it is malformed."""
    if type(v) is not list or len(v) != 2 or type(v[0]) is not str or type(v[1]) is not list:
        raise ValueError("malformed 'f64' value")
    try:
        raw = binascii.a2b_base64(v[0], strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("malformed 'f64' value") from None
    if len(raw) % 8 or len(raw) // 8 > MAX_ITEMS:
        raise ValueError("malformed 'f64' value")
    packed = array("d")
    packed.frombytes(raw)
    if _BIG_ENDIAN:
        packed.byteswap()
    items = packed.tolist()
    if not all(map(math.isfinite, items)):
        raise ValueError("non-finite number in a 'f64' value")
    last = -1
    for index in v[1]:
        if type(index) is not int or not last < index < len(items):
            raise ValueError("malformed 'f64' int positions")
        number = items[index]
        if not number.is_integer() or abs(number) > _EXACT_INT:
            raise ValueError("malformed 'f64' int")
        items[index] = int(number)
        last = index
    return items


_PLAIN_SCALARS = frozenset({int, float, str, bool, type(None)})


def untag(d: dict):
    """`json.loads` object hook for trusted frames (a sample's own inputs, sent by the
    parent): a tagged value becomes what it stands for, any other object stays a dict.
    The parent decodes what comes back from a sample with `decode`, which checks more."""
    if len(d) != 2 or "t" not in d or "v" not in d:
        return d
    tag, v = d["t"], d["v"]
    if tag == "tuple":
        return tuple(v)
    if tag == "f64":
        return _unpack_f64(v)
    if tag == "int":
        return int(v, 16)
    if tag == "dict":
        return {k: x for k, x in v}
    if tag == "set":
        return set(v)
    if tag == "frozenset":
        return frozenset(v)
    if tag == "float":
        return float(v)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "complex":
        return complex(*v)
    if tag == "type":
        return BUILTIN_TYPES[v]
    if tag == "opaque":
        return Opaque(v)
    raise ValueError(f"unknown tag {tag!r}")


def decode(data):
    """Rebuild a value from `encode`'s output; raise ValueError on anything malformed."""
    t = type(data)
    if data is None or t is bool or t is str or t is int or t is float:
        return data  # a scalar is its own value

    def dec(d, depth):
        if depth > MAX_DEPTH + 2:
            raise ValueError("nested too deeply")
        t = type(d)
        if d is None or t is bool or t is str or t is int or t is float:
            return d
        if t is list:
            if len(d) >= PACK_MIN and set(map(type, d)) <= _PLAIN_SCALARS:
                return d  # JSON scalars are their own values
            return [dec(x, depth + 1) for x in d]
        if t is not dict or set(d) != {"t", "v"}:
            raise ValueError(f"not an encoded value: {t.__name__}")
        tag, v = d["t"], d["v"]
        if tag == "int" and type(v) is str:
            return int(v, 16)
        if tag == "float" and v in ("nan", "inf", "-inf"):
            return float(v)
        if tag == "type" and v in BUILTIN_TYPES:
            return BUILTIN_TYPES[v]
        if tag == "opaque" and type(v) is str:
            return Opaque(v)
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
        if type(v) is not list:
            raise ValueError(f"malformed {tag!r} value")
        if tag == "f64":
            return _unpack_f64(v)
        if tag == "tuple":
            return tuple(dec(x, depth + 1) for x in v)
        if tag == "dict":
            out = {}
            for pair in v:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed dict item")
                out[dec(pair[0], depth + 1)] = dec(pair[1], depth + 1)
            return out
        if tag == "set":
            return {dec(x, depth + 1) for x in v}
        if tag == "frozenset":
            return frozenset(dec(x, depth + 1) for x in v)
        if tag == "complex" and len(v) == 2:
            re, im = (dec(x, depth + 1) for x in v)
            if type(re) is float and type(im) is float:
                return complex(re, im)
        raise ValueError(f"unknown tag {tag!r}")

    try:
        return dec(data, 0)
    except (RecursionError, TypeError, OverflowError) as exc:
        raise ValueError(f"malformed value: {type(exc).__name__}") from None


_LONG_DIGITS = re.compile(r"\d{19}")  # an int that may be past 2**62 (or a long string)


def dumps_trusted(value) -> bytes:
    """The JSON text of `encode(value)` for trusted values (a problem's own inputs), at C
    speed where `json` alone writes it the same: no dict, tuple, set, bytes, big int or
    non-finite float anywhere (checked by a round trip); else through `encode`."""
    try:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = None
    if (
        text is not None
        and "{" not in text
        and not _LONG_DIGITS.search(text)
        and json.loads(text) == value
    ):
        return text.encode("ascii")
    return dumps(encode(value))[:-1]


def dumps(obj) -> bytes:
    """One message as a single ASCII line (no raw newline can occur inside)."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def loads(line: bytes | str):
    """Parse one message; any malformation (deep nesting included) is a ValueError."""
    try:
        return json.loads(line)
    except (RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed message: {type(exc).__name__}") from None


def frame(obj) -> bytes:
    """`obj` as a length-prefixed JSON frame."""
    body = json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return _HEADER.pack(len(body)) + body


def write_all(fd: int, data: bytes, _write=None) -> None:
    """Write all of `data` to a blocking file descriptor."""
    import os

    view = memoryview(data)
    write = _write or os.write
    while view:
        view = view[write(fd, view) :]


def write_frame(fd: int, obj, _write=None) -> None:
    """Send `obj` as a length-prefixed JSON frame on a blocking file descriptor."""
    write_all(fd, frame(obj), _write)


def read_exact(fd: int, n: int) -> bytes:
    """Read exactly n bytes (no read-ahead); raise EOFError if the pipe closes first."""
    import os

    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, object_hook=None):
    """Receive one frame written by `write_frame`."""
    (size,) = _HEADER.unpack(read_exact(fd, _HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes exceeds the limit")
    return json.loads(read_exact(fd, size), object_hook=object_hook)
