"""Loading CRNN weights: official-format files load strictly; malicious or mismatched files are
refused with an error naming the file, and a pickled payload never runs."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import torch

import reference_cases as reference
from tzbench.weights import WeightsError
from tzbench_recognizers.crnn.judge import CRNNRecognizer
from tzbench_recognizers.crnn.params import WEIGHTS, CRNNParams


class _Payload:
    """Unpickling this object runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """A crnn.pth-like state dict: rule-B values, plain keys, old BN (no num_batches_tracked)."""
    judge = CRNNRecognizer(device="cpu")
    state = reference.rule_b_state_dict(judge.net, classifier_keys=("rnn.1.embedding.weight",))
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_official_format_loads_strictly(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / WEIGHTS.filename
    torch.save(official_state, path)
    judge = CRNNRecognizer(weights=str(path), device="cpu")
    assert judge.weights_path == path
    loaded = judge.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in official_state.items())
    # the loaded judge reproduces the rule-B pipeline strings of the official model
    case, strings = reference.load_case("crnn_ruleB"), reference.load_case_json("crnn_ruleB")
    assert judge.recognize(torch.from_numpy(case["pipeline_input_rgb"])) == strings["strings_pipeline"]


def test_module_prefix_is_tolerated(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in official_state.items()}, path)
    judge = CRNNRecognizer(device="cpu").load_weights(path)
    assert torch.equal(judge.net.state_dict()["rnn.1.embedding.weight"], official_state["rnn.1.embedding.weight"])


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, official_state: dict) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({**official_state, "extra": _Payload(marker)}, path)
    judge = CRNNRecognizer(device="cpu")
    before = {k: v.clone() for k, v in judge.net.state_dict().items()}
    with pytest.raises(WeightsError, match="evil.pth"):
        judge.load_weights(path)
    assert not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in judge.net.state_dict().items())
    # sanity: the payload is live, an unsafe load would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_wrong_keys_name_the_file(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    renamed = dict(official_state)
    renamed["rnn.2.embedding.weight"] = renamed.pop("rnn.1.embedding.weight")
    path = tmp_path / "wrong_keys.pth"
    torch.save(renamed, path)
    with pytest.raises(WeightsError, match=r"wrong_keys\.pth.*rnn\.1\.embedding\.weight"):
        CRNNRecognizer(weights=path, device="cpu")
    shaped = dict(official_state)
    shaped["rnn.1.embedding.weight"] = torch.zeros(97, 512)  # a 97-class head does not fit
    path = tmp_path / "wrong_shape.pth"
    torch.save(shaped, path)
    with pytest.raises(WeightsError, match=r"wrong_shape\.pth"):
        CRNNRecognizer(weights=path, device="cpu")
    with pytest.raises(WeightsError, match="missing.pth"):
        CRNNRecognizer(weights=tmp_path / "missing.pth", device="cpu")


def test_params_match_constructor() -> None:
    params = CRNNParams()
    assert params.model_dump() == {"mode": "legacy", "weights": None, "device": None, "batch_size": None}
    judge = CRNNRecognizer(**CRNNParams(device="cpu").model_dump())
    assert judge.mode == "legacy" and judge.device == torch.device("cpu")
    with pytest.raises(ValueError):
        CRNNParams(mode="other")
    with pytest.raises(ValueError):
        CRNNParams(unknown=1)
