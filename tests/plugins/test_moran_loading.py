"""Loading MORAN weights: the released file's layout (DataParallel ``module.`` prefix, possibly
without ``num_batches_tracked``) loads strictly; malicious or mismatched files are refused with
an error naming the file, and a pickled payload never runs."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import torch

import reference_cases as reference
from tzbench.weights import WeightsError
from tzbench_recognizers.moran.judge import MORANRecognizer
from tzbench_recognizers.moran.params import WEIGHTS

RULE_B_CLASSIFIERS = ("ASRN.attentionL2R.generator.weight", "ASRN.attentionR2L.generator.weight")


class _Payload:
    """Unpickling this object runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture(scope="module")
def judge() -> MORANRecognizer:
    return MORANRecognizer(device="cpu")


@pytest.fixture(scope="module")
def official_state(judge: MORANRecognizer) -> dict[str, torch.Tensor]:
    """A moran.pth-like state dict: rule-B values, ``module.`` keys, no num_batches_tracked."""
    state = reference.rule_b_state_dict(judge.net, classifier_keys=RULE_B_CLASSIFIERS)
    return {f"module.{k}": v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_official_format_loads_strictly(
    tmp_path: Path, judge: MORANRecognizer, official_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / WEIGHTS.filename
    torch.save(official_state, path)
    judge.load_weights(path)
    assert judge.weights_path == path
    loaded = judge.net.state_dict()
    assert all(torch.equal(loaded[k[len("module."):]], v) for k, v in official_state.items())
    # the loaded judge reproduces the official rule-B strings (align_corners=False variant)
    case, strings = reference.load_case("moran_ruleB"), reference.load_case_json("moran_ruleB")
    judge.grid_sample_align_corners = False
    try:
        assert judge.recognize(torch.from_numpy(case["input_rgb"])) == strings["pred_str"]
    finally:
        judge.grid_sample_align_corners = True


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, judge: MORANRecognizer) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_moran.pth"
    small = {"module.MORN.cnn.1.bias": torch.zeros(64), "payload": _Payload(marker)}
    torch.save(small, path)
    before = judge.net.state_dict()["MORN.cnn.1.bias"].clone()
    with pytest.raises(WeightsError, match=r"evil_moran\.pth"):
        judge.load_weights(path)
    assert not marker.exists()
    assert torch.equal(judge.net.state_dict()["MORN.cnn.1.bias"], before)
    torch.load(path, weights_only=False)  # sanity: the payload is live
    assert marker.exists()


def test_wrong_keys_name_the_file(tmp_path: Path, judge: MORANRecognizer, official_state: dict) -> None:
    # A single-direction decoder checkpoint ('attention.*') does not fit the bidirectional model.
    state = {
        k.replace("ASRN.attentionL2R.", "ASRN.attention."): v
        for k, v in official_state.items()
        if "attentionR2L" not in k
    }
    path = tmp_path / "unidirectional.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"unidirectional\.pth.*ASRN\.attentionL2R\.char_embeddings"):
        judge.load_weights(path)
