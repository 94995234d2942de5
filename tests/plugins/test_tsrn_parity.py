"""TSRN against the official implementation's reference data (shared/reference, README sec. 4-6).

State-dict layout and parameter counts, the TPS constructor buffers, eval outputs under rule-A
weights (1e-5), and train-mode outputs with the STN active for the four rule-A variants
(2e-3), on both implementations of the forward pass. Also: official checkpoint loading and
the plugin registration.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_cases import (
    NATURAL_STN_KEEP,
    apply_rule_a,
    assert_tps_buffers_match,
    load_case,
    load_keys,
    load_tps_ctor_buffers,
    reference_input,
    state_dict_layout,
)
from tzbench.specs import resolve_target
from tzbench.weights import WeightsError
from tzbench.layers.tps import STNHead, TPSSpatialTransformer
from tzbench_tsrn.params import TSRNParams, TSRNSRBAlignParams, TSRNSRBParams
from tzbench_tsrn.plugin import TSRN_SPECS, register_sr_models
from tzbench_tsrn.tsrn import TSRN, load_official_tsrn

NATURAL_KEEP = NATURAL_STN_KEEP
SUFFIXES = ["", "_legacygs", "_naturalstn", "_naturalstn_legacygs"]
PATHS = {"fast": True, "reference": False}



@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """These tensors are tiny: on a busy 2-core machine, OpenMP barriers between two threads
    cost more than the work (results differ from 2 threads only by ~1e-6)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

@pytest.fixture(scope="module")
def case() -> dict[str, np.ndarray]:
    return load_case("tsrn")


@pytest.fixture(scope="module")
def rule_a_model() -> TSRN:
    return apply_rule_a(TSRN()).eval()


def _max_diff(got: torch.Tensor, want: np.ndarray) -> float:
    assert tuple(got.shape) == want.shape
    return float(np.abs(got.detach().numpy() - want).max())


def test_input_is_the_reference_input(case: dict[str, np.ndarray]) -> None:
    (x,) = reference_input((2, 4, 16, 64))
    assert np.array_equal(x.numpy(), case["input"])


def test_state_dict_layout_matches_official() -> None:
    model = TSRN()
    got = state_dict_layout(model)
    assert got == load_keys("tsrn")
    assert len(got) == 239
    assert sum(p.numel() for p in model.parameters()) == 2_681_677
    assert sum(p.numel() for p in TSRN(stn=False).parameters()) == 826_629
    no_stn = TSRN(stn=False).state_dict()
    assert not any(k.startswith(("tps.", "stn_head.")) for k in no_stn)


def test_tps_and_stn_constructor_buffers() -> None:
    want = load_tps_ctor_buffers("tsrn")
    tps = TPSSpatialTransformer((16, 64), num_control_points=20, margins=(0.05, 0.05))
    head = STNHead(in_planes=4, num_ctrlpoints=20)
    got = {f"tps.{k}": v for k, v in tps.state_dict().items()}
    got.update({f"stn_head.{k}": v for k, v in head.state_dict().items()})
    assert set(want) == {*(f"tps.{k}" for k in tps.state_dict()), "stn_head.stn_fc2.weight", "stn_head.stn_fc2.bias"}
    # the values the official code computes (the inverse kernel up to the CPU's LAPACK path)
    assert_tps_buffers_match(got, want)
    # the same values inside TSRN
    assert_tps_buffers_match(TSRN().state_dict(), want)


def test_alignment_module_is_general_aster_buffers() -> None:
    """The same classes build ASTER's STN (RGB input, 32x100 output) with its official buffers."""
    want = load_tps_ctor_buffers("aster")
    tps = TPSSpatialTransformer((32, 100))
    head = STNHead(in_planes=3)
    got = {f"tps.{k}": v for k, v in tps.state_dict().items()}
    got.update({f"stn_head.{k}": v for k, v in head.state_dict().items()})
    assert_tps_buffers_match(got, want)
    _, ctrl = head.eval()(torch.rand(2, 3, 32, 64))
    rectified, coords = tps(torch.rand(2, 3, 32, 64), ctrl)
    assert ctrl.shape == (2, 20, 2) and rectified.shape == (2, 3, 32, 100) and coords.shape == (2, 3200, 2)


def test_tps_uses_loaded_buffers() -> None:
    tps = TPSSpatialTransformer((16, 64))
    ctrl = torch.rand(1, 20, 2)
    x = torch.rand(1, 4, 32, 64)
    before, _ = tps(x, ctrl)
    state = tps.state_dict()
    state["target_coordinate_repr"] = torch.zeros_like(state["target_coordinate_repr"])
    tps.load_state_dict(state)
    after, coords = tps(x, ctrl)
    assert torch.all(coords == 0)  # every sample point comes from the (zeroed) loaded buffer
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("path", list(PATHS))
def test_eval_output(case: dict[str, np.ndarray], rule_a_model: TSRN, path: str) -> None:
    model = rule_a_model
    model.fast_path = PATHS[path]
    x = torch.from_numpy(case["input"])
    with torch.no_grad():
        out = model(x)
        block1 = model.block1(x[:1])
        block2 = model.block2(block1) if path == "reference" else model.block2.forward_fast(block1)
    assert _max_diff(out, case["out_eval"]) <= 1e-5
    assert _max_diff(block1, case["eval_block1_sample0"]) <= 1e-5
    assert _max_diff(block2, case["eval_block2_sample0"]) <= 1e-5
    assert out.shape == (2, 4, 32, 128) and float(out.abs().max()) <= 1.0


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_train_mode_with_stn(case: dict[str, np.ndarray], suffix: str, path: str) -> None:
    base = TSRN(grid_sample_align_corners="legacygs" in suffix)
    apply_rule_a(base, keep_keys=NATURAL_KEEP if "naturalstn" in suffix else ())
    # train mode uses batch statistics and updates running stats: work on a copy
    model = copy.deepcopy(base).train()
    model.fast_path = PATHS[path]
    x = torch.from_numpy(case["input"])
    with torch.no_grad():
        rectified, ctrl = copy.deepcopy(base).train().rectify(x)
        out = model(x)
    assert _max_diff(ctrl, case[f"train_ctrl_points{suffix}"]) <= 2e-3
    assert _max_diff(rectified, case[f"train_rectified{suffix}"]) <= 2e-3
    assert _max_diff(out, case[f"out_train{suffix}"]) <= 2e-3


def test_legacy_grid_sample_switch_matters(case: dict[str, np.ndarray]) -> None:
    assert np.abs(case["out_train"] - case["out_train_legacygs"]).max() > 2e-3  # the switch is observable
    assert TSRN(grid_sample_align_corners=True).grid_sample_align_corners is True
    assert TSRN().tps.align_corners is False


def test_stn_runs_only_in_training_unless_asked() -> None:
    model = TSRN().eval()
    calls: list[int] = []
    model.stn_head.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        model(torch.rand(2, 4, 16, 64))
    assert calls == []
    model.stn_at_test = True
    with torch.no_grad():
        model(torch.rand(2, 4, 16, 64))
    assert calls == [1]


def test_three_channel_model() -> None:
    model = TSRN(mask=False, stn=True).eval()
    assert model.in_channels == 3
    with torch.no_grad():
        assert model(torch.rand(2, 3, 16, 64)).shape == (2, 3, 32, 128)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(2, 4, 16, 64))


# -- official checkpoints -----------------------------------------------------------------------


def _official_file(tmp_path: Path, state: dict[str, torch.Tensor], name: str) -> Path:
    path = tmp_path / name
    torch.save({"state_dict_G": state, "info": {"epochs": 1}}, path)
    return path


@pytest.mark.parametrize("variant", ["plain", "module_prefix", "no_num_batches_tracked"])
def test_load_official_checkpoint(tmp_path: Path, case: dict[str, np.ndarray], variant: str) -> None:
    source = apply_rule_a(TSRN())
    state = {k: v.clone() for k, v in source.state_dict().items()}
    if variant == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    elif variant == "no_num_batches_tracked":
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = _official_file(tmp_path, state, f"{variant}.pth")
    model = load_official_tsrn(TSRN(), path).eval()
    with torch.no_grad():
        out = model(torch.from_numpy(case["input"]))
    assert _max_diff(out, case["out_eval"]) <= 1e-5
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_load_official_checkpoint_wrong_model(tmp_path: Path) -> None:
    path = _official_file(tmp_path, TSRN(stn=False).state_dict(), "nostn.pth")
    with pytest.raises(WeightsError, match=r"missing keys \['tps\.inverse_kernel'"):
        load_official_tsrn(TSRN(), path)
    path = _official_file(tmp_path, TSRN(mask=False).state_dict(), "rgb.pth")
    with pytest.raises(WeightsError, match=r"block1\.0\.weight.*shape \(64, 3, 9, 9\)"):
        load_official_tsrn(TSRN(), path)
    state = dict(TSRN().state_dict())
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"unexpected keys \['extra\.weight'\]"):
        load_official_tsrn(TSRN(), _official_file(tmp_path, state, "extra.pth"))
    torch.save({"state_dict": TSRN().state_dict()}, tmp_path / "aster_like.pth")
    with pytest.raises(WeightsError, match="state_dict_G"):
        load_official_tsrn(TSRN(), tmp_path / "aster_like.pth")


# -- registration -------------------------------------------------------------------------------


def test_registered_ablations() -> None:
    specs = {spec.name: spec for spec in register_sr_models()}
    assert list(specs) == ["tsrn", "tsrn_srb_align", "tsrn_srb"]
    assert [s.default_loss for s in specs.values()] == ["tsrn_loss", "l2", "l2"]
    assert all(s.in_channels is None and s.scale == 2 and s.trainable for s in specs.values())
    assert all("Scene Text Image Super-Resolution in the Wild, ECCV 2020" in s.paper for s in specs.values())
    counts = {}
    for spec in TSRN_SPECS:
        model = resolve_target(spec.target)(**spec.params().model_dump())
        counts[spec.name] = (model.stn, sum(p.numel() for p in model.parameters()))
    assert counts == {"tsrn": (True, 2_681_677), "tsrn_srb_align": (True, 2_681_677), "tsrn_srb": (False, 826_629)}


def test_params_defaults_and_validation() -> None:
    assert TSRNParams().model_dump() == {
        "scale_factor": 2, "width": 128, "height": 32, "stn": True, "srb_nums": 5, "mask": True,
        "hidden_units": 32, "stn_at_test": False, "grid_sample_align_corners": False,
    }
    assert TSRNSRBParams().stn is False and TSRNSRBAlignParams().stn is True
    with pytest.raises(ValueError):
        TSRNParams(hiden_units=3)
    with pytest.raises(ValueError, match="power of two"):
        TSRN(scale_factor=3)
