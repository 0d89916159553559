"""The bottom layer's one JSONL reader, file digest and config-path resolver."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from embedops.core.config import resolve_relative_paths
from embedops.core.errors import DataError, GoldenSetError
from embedops.core.files import file_sha256, read_jsonl


def test_jsonl_lines_are_numbered_from_one_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    # A BOM is ignored, \r\n is a line end, and U+2028 inside a string does not split the line.
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\n  \n' + json.dumps({"b": "x\u2028y"}, ensure_ascii=False).encode())
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"b": "x\u2028y"})]


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"a": 1}\n{"a": "caf\xe9"}\n', r"row 2: not UTF-8 text \(byte 0xe9\) at byte offset 10 of the line"),
        (b'{"a": 1}\n{"a": \n', r"row 2: not valid JSON \(Expecting value\)"),
        (b"[1, 2]\n", "row 1: expected a JSON object per line, got list"),
    ],
)
def test_bad_jsonl_lines_name_the_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(GoldenSetError, match=message) as info:
        list(read_jsonl(path, error=GoldenSetError))
    assert str(path) in str(info.value)


def test_a_missing_jsonl_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        list(read_jsonl(tmp_path / "nope.jsonl"))


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (5 << 20))  # more than one block
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_relative_config_paths_follow_the_file_and_nothing_else_changes(tmp_path: Path) -> None:
    values = {
        "data": "../d/pairs.jsonl",
        "base_model": "models:/m/1",
        "golden": "~/golden",
        "policy": str(tmp_path / "abs.yaml"),
        "epochs": 3,
    }
    resolve_relative_paths(
        values, ("data", "base_model", "golden", "policy", "epochs", "missing"), tmp_path / "c" / "t.yaml"
    )
    assert values == {
        "data": str(tmp_path / "d" / "pairs.jsonl"),
        "base_model": "models:/m/1",
        "golden": "~/golden",
        "policy": str(tmp_path / "abs.yaml"),
        "epochs": 3,
    }
