"""CRNN parity with the official TextZoom/crnn.pytorch model (shared/reference, section 4).

Under rule A and rule B weights the network reproduces every array of ``crnn.case0.npz`` and
``crnn_ruleB.case0.npz`` (logits, CNN features, argmax ids), and the judge returns exactly the
strings the official converter produced, both for the gray input fed directly and for the
RGB 32x128 pipeline path (TextZoom's ``parse_crnn_data``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import reference_cases as reference
from tzbench_recognizers.crnn.judge import CRNNRecognizer
from tzbench_recognizers.crnn.net import CRNN

RULE_B_CLASSIFIERS = ("rnn.1.embedding.weight",)
CASES = {"A": "crnn", "B": "crnn_ruleB"}
ATOL = 1e-4  # reference README section 6 observed <= 8e-6 between float32/float64 reruns


def _judge(rule: str) -> CRNNRecognizer:
    judge = CRNNRecognizer(device="cpu")
    if rule == "A":
        reference.apply_rule_a(judge.net)
    else:
        reference.apply_rule_b(judge.net, classifier_keys=RULE_B_CLASSIFIERS)
    return judge


@pytest.fixture(scope="module", params=["A", "B"])
def rule(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def setup(rule: str) -> tuple[CRNNRecognizer, dict[str, np.ndarray], dict]:
    name = CASES[rule]
    return _judge(rule), reference.load_case(name), reference.load_case_json(name)


def test_state_dict_layout_matches_official() -> None:
    net = CRNN(imgH=32, nc=1, nclass=37, nh=256)
    ours = [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()]
    assert ours == reference.load_keys("crnn")
    counts = json.loads((reference.reference_dir() / "param_counts.json").read_text())["crnn"]
    assert sum(p.numel() for p in net.parameters()) == counts["param_count"] == 8_331_301
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == counts["trainable_param_count"]
    assert len(net.state_dict()) == counts["state_dict_entries"]


def _assert_close(ours: torch.Tensor, ref: np.ndarray, what: str) -> None:
    assert tuple(ours.shape) == ref.shape, what
    diff = float(np.abs(ours.numpy() - ref).max())
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g}"


def test_direct_input(setup: tuple[CRNNRecognizer, dict, dict]) -> None:
    judge, case, strings = setup
    x = torch.from_numpy(case["input"])
    # the reference input is seed-0 rand, as section 3 says
    assert torch.equal(x, reference.reference_input((2, 1, 32, 100))[0])
    with torch.no_grad():
        out = judge.net(x)
        feats = judge.net.features(x)
    _assert_close(out, case["out"], "out")
    _assert_close(feats, case["cnn_feats"], "cnn_feats")
    assert np.array_equal(out.argmax(2).T.numpy(), case["argmax"])
    assert judge.decode(out) == strings["strings"]


def test_pipeline_path(setup: tuple[CRNNRecognizer, dict, dict]) -> None:
    judge, case, strings = setup
    rgb = torch.from_numpy(case["pipeline_input_rgb"])
    assert torch.equal(rgb, reference.reference_input((2, 3, 32, 128))[0])
    x = judge.preprocess(rgb)
    _assert_close(x, case["pipeline_gray_32x100"], "pipeline_gray_32x100")
    with torch.no_grad():
        out = judge.net(x)
        feats = judge.net.features(x)
    _assert_close(out, case["out_pipeline"], "out_pipeline")
    _assert_close(feats, case["cnn_feats_pipeline"], "cnn_feats_pipeline")
    assert np.array_equal(out.argmax(2).T.numpy(), case["argmax_pipeline"])
    # end to end: the strings TextZoom's test loop scores, in one batch and chunked
    assert judge.recognize(rgb) == strings["strings_pipeline"]
    judge.batch_size = 1
    try:
        assert judge.recognize(rgb) == strings["strings_pipeline"]
    finally:
        judge.batch_size = None


def test_native_mode_is_signed_legacy_input() -> None:
    (rgb,) = reference.reference_input((2, 3, 32, 128))
    legacy = CRNNRecognizer(device="cpu").preprocess(rgb)
    native = CRNNRecognizer(mode="native", device="cpu").preprocess(rgb)
    torch.testing.assert_close(native, (legacy - 0.5) / 0.5)
    assert float(native.min()) < 0.0


def test_rule_b_decoding_depends_on_input() -> None:
    # Guard that rule B exercises real decoding: the two input paths disagree.
    strings = reference.load_case_json("crnn_ruleB")
    assert strings["strings"] != strings["strings_pipeline"]


def test_any_input_size_and_mask_channel() -> None:
    # LR-sized and 4-channel (RGB + mask) inputs are resized/cut like TextZoom's SR outputs.
    judge = _judge("B")
    (lr,) = reference.reference_input((3, 4, 16, 64))
    assert judge.preprocess(lr).shape == (3, 1, 32, 100)
    strings = judge.recognize(lr)
    assert len(strings) == 3 and all(set(s) <= set(judge.charset) for s in strings)
