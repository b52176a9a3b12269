import gzip

import pytest

from codealign.errors import CodealignError
from codealign.io import atomic_path, read_jsonl, require_fields, write_json, write_jsonl


def test_roundtrip_plain_and_gzip(tmp_path):
    records = [{"a": 1, "text": "ü"}, {"a": 2, "text": "x"}]
    for name in ("r.jsonl", "r.jsonl.gz"):
        assert write_jsonl(tmp_path / name, records) == 2
        assert read_jsonl(tmp_path / name) == records
    with gzip.open(tmp_path / "r.jsonl.gz", "rt") as handle:
        assert handle.readline().startswith('{"a": 1')


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": \n', r"bad.jsonl:2: invalid JSON"),
        (b'{"a": 1}\n[1, 2]\n', r"bad.jsonl:2: expected a JSON object, got list"),
        (b'{"a": "\xff\xfe"}\n', r"bad.jsonl: not valid UTF-8"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(CodealignError, match=message):
        read_jsonl(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CodealignError, match="nope.jsonl: file not found"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_require_fields_names_field_and_type():
    with pytest.raises(CodealignError, match="f:3: missing field 'code'"):
        require_fields({"question": "q"}, {"question": str, "code": str}, "f:3")
    with pytest.raises(CodealignError, match="f:3: field 'n' must be int, got bool"):
        require_fields({"n": True}, {"n": int}, "f:3")


def test_atomic_dir_replaces_whole_or_nothing(tmp_path):
    out = tmp_path / "out"
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "a.txt").write_text("first")
    assert (out / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "b.txt").write_text("half")
        raise RuntimeError("killed midway")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "b.txt").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp dirs left behind


def test_write_json_is_stable(tmp_path):
    write_json(tmp_path / "m.json", {"b": 1, "a": 2})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
