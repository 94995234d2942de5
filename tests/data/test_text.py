"""Parity of label filtering with the official TextZoom code (strfilt.case0.json)."""

from __future__ import annotations

import pytest

from reference_cases import load_case_json
from tzbench.text import normalize_text, str_filt


@pytest.mark.parametrize("voc", ["digit", "lower", "upper", "all"])
def test_str_filt_matches_reference(voc: str) -> None:
    case = load_case_json("strfilt")
    got = [str_filt(s, voc) for s in case["labels"]]
    assert got == case[f"str_filt_{voc}"]


def test_normalize_text_matches_reference() -> None:
    case = load_case_json("strfilt")
    assert [normalize_text(s) for s in case["labels"]] == case["metrics_normalize_text"]


def test_unknown_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown vocabulary"):
        str_filt("abc", "greek")
