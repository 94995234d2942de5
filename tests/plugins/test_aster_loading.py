"""The ASTER judge end to end: official-format checkpoints (``{'state_dict': sd}``) load
strictly, old files without TPS buffers or ``num_batches_tracked`` are accepted, wrong or
hostile files are refused naming the file, and the loaded judge returns the official strings.
Also the params model, the training path and the loss."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import torch

import reference_cases as reference
from tzbench.weights import WeightsError
from tzbench_recognizers.aster.judge import ASTERRecognizer
from tzbench_recognizers.aster.net import ASTER, SequenceCrossEntropyLoss
from tzbench_recognizers.aster.params import CHARSET, WEIGHTS, ASTERParams

TPS_BUFFERS = (
    "tps.inverse_kernel",
    "tps.padding_matrix",
    "tps.target_coordinate_repr",
    "tps.target_control_points",
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread keeps the 100-step beam search fast on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _Payload:
    """Unpickling this object runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """A demo.pth.tar-like state dict: rule-B values (reference README section 2), old BN."""
    net = ASTER()
    state = reference.rule_b_state_dict(
        net, keep_keys=TPS_BUFFERS + ("stn_head.stn_fc2.bias",), classifier_keys=("decoder.decoder.fc.weight",)
    )
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def rule_b_case() -> tuple[torch.Tensor, dict]:
    case = reference.load_case("aster_ruleB")
    return torch.from_numpy(case["input"]), reference.load_case_json("aster_ruleB")


def test_official_format_loads_strictly_and_recognizes(
    tmp_path: Path, official_state: dict[str, torch.Tensor], rule_b_case: tuple[torch.Tensor, dict]
) -> None:
    path = tmp_path / WEIGHTS.filename
    torch.save({"state_dict": official_state, "epoch": 0, "best_res": 0.0}, path)
    images, strings = rule_b_case
    # default: align_corners=True (torch <= 1.2, what the weights were trained under)
    judge = ASTERRecognizer(weights=str(path), device="cpu")
    assert judge.weights_path == path
    loaded = judge.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in official_state.items())
    assert judge.recognize(images) == strings["pred_str_normalized_legacygs"]
    modern = ASTERRecognizer(weights=path, device="cpu", grid_sample_align_corners=False, batch_size=1)
    assert modern.recognize(images) == strings["pred_str_normalized"]
    # the official always-100-steps search stays selectable and reads the same strings
    official = ASTERRecognizer(weights=path, device="cpu", beam_early_stop=False)
    assert official.net.beam_early_stop is False and judge.net.beam_early_stop is True
    assert official.recognize(images) == strings["pred_str_normalized_legacygs"]
    assert set("".join(strings["pred_str_normalized"])) <= set(CHARSET)


def test_missing_tps_buffers_are_regenerated(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "no_tps.pth.tar"
    torch.save({"state_dict": {k: v for k, v in official_state.items() if k not in TPS_BUFFERS}}, path)
    judge = ASTERRecognizer(weights=path, device="cpu")
    state = judge.net.state_dict()
    official = reference.load_tps_ctor_buffers("aster")
    reference.assert_tps_buffers_match(state, {k: official[k] for k in TPS_BUFFERS})


def test_random_tps_buffers_are_used_as_loaded(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    """Persistent buffers: a checkpoint's values win over the constructor's (rule A relies on it)."""
    state = dict(official_state)
    state["tps.inverse_kernel"] = torch.full((23, 23), 0.5)
    path = tmp_path / "custom_tps.pth.tar"
    torch.save({"state_dict": state}, path)
    judge = ASTERRecognizer(weights=path, device="cpu")
    assert torch.equal(judge.net.state_dict()["tps.inverse_kernel"], state["tps.inverse_kernel"])


def test_module_prefix_is_tolerated(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "dp.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in official_state.items()}}, path)
    judge = ASTERRecognizer(device="cpu").load_weights(path)
    key = "decoder.decoder.fc.weight"
    assert torch.equal(judge.net.state_dict()[key], official_state[key])


def test_wrong_files_name_the_file(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    missing = {k: v for k, v in official_state.items() if k != "decoder.decoder.fc.weight"}
    path = tmp_path / "missing_fc.pth.tar"
    torch.save({"state_dict": missing}, path)
    with pytest.raises(WeightsError, match=r"missing_fc\.pth\.tar.*decoder\.decoder\.fc\.weight"):
        ASTERRecognizer(weights=path, device="cpu")

    extra = {**official_state, "decoder.decoder.fc2.weight": torch.zeros(3)}
    path = tmp_path / "extra_key.pth.tar"
    torch.save({"state_dict": extra}, path)
    with pytest.raises(WeightsError, match=r"extra_key\.pth\.tar.*decoder\.decoder\.fc2\.weight"):
        ASTERRecognizer(weights=path, device="cpu")

    shaped = {**official_state, "decoder.decoder.fc.weight": torch.zeros(37, 512)}
    path = tmp_path / "wrong_shape.pth.tar"
    torch.save({"state_dict": shaped}, path)
    with pytest.raises(WeightsError, match=r"wrong_shape\.pth\.tar.*decoder\.decoder\.fc\.weight"):
        ASTERRecognizer(weights=path, device="cpu")

    # a bare state dict is not the official layout (TextZoom reads ['state_dict'])
    path = tmp_path / "bare.pth"
    torch.save(official_state, path)
    with pytest.raises(WeightsError, match=r"bare\.pth.*state_dict"):
        ASTERRecognizer(weights=path, device="cpu")

    with pytest.raises(WeightsError, match=r"absent\.pth\.tar"):
        ASTERRecognizer(weights=tmp_path / "absent.pth.tar", device="cpu")


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, official_state: dict) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": official_state, "arch": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match=r"evil\.pth\.tar"):
        ASTERRecognizer(weights=path, device="cpu")
    assert not marker.exists()


def test_params_build_the_judge() -> None:
    params = ASTERParams(device="cpu")
    judge = ASTERRecognizer(**params.model_dump())
    assert judge.mode == "legacy" and judge.net.beam_width == 5 and judge.net.max_len_labels == 100
    assert judge.net.grid_sample_align_corners is True
    assert params.beam_early_stop is True and judge.net.beam_early_stop is True
    reference_search = ASTERRecognizer(**ASTERParams(device="cpu", beam_early_stop=False).model_dump())
    assert reference_search.net.beam_early_stop is False
    assert WEIGHTS.filename == "demo.pth.tar"
    with pytest.raises(ValueError):
        ASTERParams(beam=3)
    with pytest.raises(ValueError):
        ASTERRecognizer(mode="gray", device="cpu")


def test_recognize_accepts_mask_channel_and_other_sizes() -> None:
    judge = ASTERRecognizer(device="cpu", max_len_labels=8)
    images = torch.rand(2, 4, 16, 64)  # an LR-sized input with the mask channel
    out = judge.recognize(images)
    assert len(out) == 2 and all(isinstance(s, str) for s in out)
    assert not judge.net.training


def test_sequence_loss_masks_and_normalises() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    targets = torch.randint(0, 7, (2, 6))
    lengths = [4, 2]
    got = SequenceCrossEntropyLoss()(logits, targets, lengths)
    logp = torch.log_softmax(logits, dim=2)
    want = -(logp[0, torch.arange(4), targets[0, :4]].sum() + logp[1, torch.arange(2), targets[1, :2]].sum()) / 2
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="steps"):
        SequenceCrossEntropyLoss()(logits, targets, [3, 2])


def test_training_forward_backpropagates_into_the_rectifier() -> None:
    torch.manual_seed(0)
    net = ASTER(max_len_labels=6).train()
    images = torch.rand(2, 3, 32, 128) * 2 - 1
    targets = torch.tensor([[10, 11, 94, 95, 95, 95], [12, 94, 95, 95, 95, 95]])
    out = net(images, targets, [3, 2])
    assert set(out) == {"logits", "loss_rec"} and out["logits"].shape == (2, 3, 97)
    out["loss_rec"].backward()
    # stn_fc2 starts at zero weights; its gradient proves the TPS warp is differentiable
    assert net.stn_head.stn_fc2.weight.grad.abs().sum() > 0
    assert net.decoder.decoder.fc.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="rec_targets"):
        net(images)
