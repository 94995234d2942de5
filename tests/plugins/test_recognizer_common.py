"""Shared judge helpers: string decoders against the official converters' outputs
(decoders.case0.json), TextZoom's CRNN/MORAN preprocessing, and the Recognizer base class."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import reference_cases as reference
from tzbench_recognizers.common import (
    LOWER_ALNUM,
    Recognizer,
    attention_decode,
    check_images,
    ctc_greedy_decode,
    cut_at,
    legacy_gray,
    rgb_to_gray,
    to_signed,
)

MORAN_ALPHABET = LOWER_ALNUM + "$"


@pytest.fixture(scope="module")
def decoders() -> dict:
    return reference.load_case_json("decoders")


# ------------------------------------------------------------------ decoders (exact strings)


def test_crnn_ctc_decode_small_alphabet(decoders: dict) -> None:
    case = decoders["crnn_small"]
    # ids are in 0..5: class 0 is the blank, 1..5 are the first five symbols of 0-9a-z
    alphabet = LOWER_ALNUM[:5]
    assert ctc_greedy_decode(case["ids"], alphabet) == case["decode"]
    assert ctc_greedy_decode(case["ids"], alphabet, raw=True) == case["decode_raw"]


def test_crnn_ctc_decode_full_alphabet(decoders: dict) -> None:
    case = decoders["crnn_full"]
    assert ctc_greedy_decode(case["ids"]) == case["decode"]
    assert ctc_greedy_decode(case["ids"], raw=True) == case["decode_raw"]
    # a tensor input gives the same strings as the list input
    assert ctc_greedy_decode(torch.tensor(case["ids"])) == case["decode"]


def test_moran_decode_and_cut(decoders: dict) -> None:
    case = decoders["moran"]
    assert attention_decode(case["ids"], MORAN_ALPHABET) == case["decode"]
    assert attention_decode(case["ids"], MORAN_ALPHABET, end_symbol="$") == case["pred_str"]
    assert [cut_at(s, "$") for s in case["decode"]] == case["pred_str"]


def test_ctc_decode_edge_cases() -> None:
    assert ctc_greedy_decode([[0, 0, 0]]) == [""]
    assert ctc_greedy_decode([[1, 1, 0, 1, 2, 2]]) == ["001"]  # a blank separates repeats
    assert ctc_greedy_decode(torch.tensor([3, 3, 4])) == ["23"]  # one 1-D row


# ------------------------------------------------------------------ preprocessing


def test_legacy_gray_matches_parse_crnn_data() -> None:
    case = reference.load_case("crnn")
    rgb = torch.from_numpy(case["pipeline_input_rgb"])
    gray = legacy_gray(rgb)
    assert gray.shape == (2, 1, 32, 100)
    torch.testing.assert_close(gray, torch.from_numpy(case["pipeline_gray_32x100"]), atol=1e-6, rtol=0)


def test_legacy_gray_ignores_mask_channel() -> None:
    (rgbm,) = reference.reference_input((2, 4, 32, 128))
    other = rgbm.clone()
    other[:, 3] = 1 - other[:, 3]
    assert torch.equal(legacy_gray(rgbm), legacy_gray(other))


def test_gray_weights_and_signed_range() -> None:
    x = torch.zeros(1, 3, 1, 1)
    x[0, 0] = 1.0
    assert rgb_to_gray(x).item() == pytest.approx(0.299)
    assert to_signed(torch.tensor([0.0, 0.5, 1.0])).tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "bad, err",
    [(torch.zeros(2, 1, 32, 100), ValueError), (torch.zeros(3, 32, 100), ValueError),
     (torch.zeros(2, 3, 32, 100, dtype=torch.uint8), TypeError)],
)  # fmt: skip
def test_check_images_rejects(bad: Tensor, err: type) -> None:
    with pytest.raises(err):
        check_images(bad)


# ------------------------------------------------------------------ Recognizer base class


class _MeanJudge(Recognizer):
    """A tiny judge: 'a' if the mean gray of the image is above the threshold, else 'b'."""

    name = "mean"

    def build_net(self) -> nn.Module:
        net = nn.Linear(1, 1)
        with torch.no_grad():
            net.weight.fill_(1.0)
            net.bias.fill_(-0.5)
        return net

    def preprocess(self, images: Tensor) -> Tensor:
        gray = legacy_gray(images, (8, 8))
        return (gray if self.mode == "legacy" else to_signed(gray)).mean((1, 2, 3)).unsqueeze(1)

    def decode(self, output: Tensor) -> list[str]:
        assert not torch.is_grad_enabled()
        return ["a" if v > 0 else "b" for v in output[:, 0].tolist()]


def test_recognizer_base_batches_and_restores_state() -> None:
    images = torch.stack([torch.full((3, 16, 16), v) for v in (0.9, 0.1, 0.8, 0.2, 0.7)])
    judge = _MeanJudge(device="cpu")
    assert judge.recognize(images) == ["a", "b", "a", "b", "a"]
    chunked = _MeanJudge(device="cpu", batch_size=2)
    assert chunked(images) == judge.recognize(images)
    judge.net.train()
    judge.recognize(images)
    assert judge.net.training  # recognize runs eval() but gives the train state back
    assert judge.to("cpu") is judge and judge.device == torch.device("cpu")


def test_recognizer_base_modes() -> None:
    images = torch.full((1, 3, 16, 16), 0.6)
    assert _MeanJudge(device="cpu").recognize(images) == ["a"]  # 0.6 - 0.5 > 0
    assert _MeanJudge(mode="native", device="cpu").recognize(images) == ["b"]  # 0.2 - 0.5 < 0
    with pytest.raises(ValueError, match="mode"):
        _MeanJudge(mode="fancy", device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        _MeanJudge(device="cpu", batch_size=0)
