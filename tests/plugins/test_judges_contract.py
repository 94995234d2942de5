"""The judge contract, for every registered recognizer.

Every judge passes ``tzbench.testing.check_recognizer`` (one string per image, within its
charset, deterministic, a batch read like its parts, the mask channel ignored) and, where it
has real weights (ppocr, ppocrv2 and crnn_tz always do; tesseract when installed), reads clean
rendered words. The TextZoom judges and vitstr have no weights here, so for them the
test checks strings and determinism only (their accuracy is shown by a training run; see
docs/judges.md).

Tesseract is the one judge allowed to skip: when its binary is missing the test says how to
install it (.ci/run installs it, so CI runs its test).
"""

from __future__ import annotations

import shutil

import pytest
import torch

import tzbench
from tzbench.metrics import word_accuracy
from tzbench.testing import check_recognizer
from tzbench_recognizers.samples import CLEAN_WORDS, render_clean_words

WORDS = list(CLEAN_WORDS)
#: Accuracy floors on the clean words, for judges that ship real weights.
FLOORS = {"ppocr": 0.80, "ppocrv2": 0.80, "crnn_tz": 0.80, "tesseract": 0.50}
# Judges with beam search or long attention loops are slow untrained on 2 CPU cores: they
# read a smaller batch (the contract is the same).
SMALL_BATCH = {"aster": 2, "moran": 8}
# Untrained ASTER's beams never end, so even its early-stopping search runs all decoding
# steps; 30 instead of 100 keeps its test fast (its parity tests cover the default).
PARAMS = {"aster": {"max_len_labels": 30}}
NAMES = tzbench.list_recognizers()


@pytest.fixture(scope="module")
def words() -> tuple[torch.Tensor, list[str]]:
    return render_clean_words(WORDS), WORDS


def test_every_builtin_judge_is_listed() -> None:
    assert {"ppocr", "ppocrv2", "crnn", "crnn_tz", "moran", "aster", "vitstr", "tesseract"} <= set(NAMES)


def _params(name: str) -> dict:
    if name == "tesseract" and shutil.which("tesseract") is None:
        pytest.skip("tesseract binary not found: `apt-get install tesseract-ocr` to run the tesseract judge test")
    params = dict(PARAMS.get(name, {}))
    if "device" in tzbench.get_catalog().spec("recognizers", name).params.model_fields:
        params["device"] = "cpu"
    return params


@pytest.mark.parametrize("name", NAMES)
def test_judge_contract(name: str, words: tuple[torch.Tensor, list[str]]) -> None:
    """tzbench.testing.check_recognizer on clean words, then the accuracy floor where there are weights."""
    images, labels = words
    n = SMALL_BATCH.get(name, len(labels))
    first = check_recognizer(name, params=_params(name), images=images[:n])
    if name in FLOORS:
        acc = sum(word_accuracy(first, labels[:n])) / n
        assert acc >= FLOORS[name], f"{name} read only {acc:.2%} of clean words: {list(zip(first, labels))}"


def test_missing_tesseract_binary_says_how_to_install() -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install tesseract-ocr"):
        tzbench.create_recognizer("tesseract", binary="/nonexistent/tesseract-binary")
