"""PCAN and its loss against the official Shualite/PCAN code (tests/reference/pcan, its README).

State-dict layout and parameter counts (4,100,173 with STN and mask), strict loading with and
without ``module.``, eval outputs and intermediate features under rule-A weights (1e-5),
train-mode outputs (STN, batch BN) for the 4-channel STN model and the 3-channel model without
STN, one official training step's loss and gradients, every term of ``pcan_loss`` and its
gradient, and the plugin registration.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tzbench
from reference_cases import NATURAL_STN_KEEP, ModelReference, apply_rule_a, max_diff, state_dict_layout, stn_tol
from tzbench.errors import TzbenchError
from tzbench.specs import resolve_target
from tzbench.weights import WeightsError
from tzbench_successors.params import PCANLossParams, PCANParams
from tzbench_successors.pcan import PCAN, load_official_pcan, load_pcan_state_dict
from tzbench_successors.pcan_loss import PCANLoss, edge_map
from tzbench_successors.plugin import SUCCESSOR_SPECS, register_losses, register_sr_models

REFERENCE = ModelReference("pcan")
REF = REFERENCE.path
NATURAL_KEEP = NATURAL_STN_KEEP
#: name -> constructor kwargs of the reference case
CASES = {"pcan": {"stn": True, "mask": True}, "pcan_nostn_nomask": {"stn": False, "mask": False}}


@pytest.fixture(scope="module", autouse=True)
def _single_thread(single_thread: None) -> None:
    """Every test here on one thread (see reference_cases.single_thread)."""


def _rule_a(name: str, natural: bool = False) -> PCAN:
    return apply_rule_a(PCAN(**CASES[name]), keep_keys=NATURAL_KEEP if natural else ())  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_layout_and_counts_match_official(name: str) -> None:
    model = PCAN(**CASES[name])
    got = state_dict_layout(model)
    assert got == REFERENCE.keys(name)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE.counts()[name]["params"]


def test_parameter_counts_of_all_four_variants() -> None:
    counts = REFERENCE.counts()
    for stn in (True, False):
        for mask in (True, False):
            n = sum(p.numel() for p in PCAN(stn=stn, mask=mask).parameters())
            assert n == counts[f"pcan(STN={stn}, mask={mask})"]
    assert counts["pcan(STN=True, mask=True)"] == 4_100_173  # the 4.10M


def test_input_is_the_reference_input() -> None:
    g = torch.Generator().manual_seed(0)
    assert np.array_equal(torch.rand((2, 4, 16, 64), generator=g).numpy(), REFERENCE.case("pcan")["input"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_eval_output_parity(name: str) -> None:
    case = REFERENCE.case(name)
    model = _rule_a(name).eval()
    x = torch.from_numpy(case["input"])
    with torch.no_grad():
        assert max_diff(model(x), case["out_eval"]) < 1e-5
        feat1, feats = model.pcab_features(x)
    assert max_diff(feat1[:1, :8], case["eval_block1_sample0_ch0_7"]) < 1e-5
    assert max_diff(feats[0][:1, :8], case["eval_block2_sample0_ch0_7"]) < 1e-5
    assert max_diff(feats[1][:1, :8], case["eval_block3_sample0_ch0_7"]) < 1e-5


@pytest.mark.parametrize(("name", "suffix"), [("pcan", ""), ("pcan", "_naturalstn"), ("pcan_nostn_nomask", "")])
def test_train_mode_parity(name: str, suffix: str) -> None:
    """Train mode: the STN (4-channel model) on the 32x64 resize, batch-statistics BN."""
    case = REFERENCE.case(name)
    model = _rule_a(name, natural=bool(suffix)).train()
    x = torch.from_numpy(case["input"])
    tol = stn_tol(1e-5, 3e-3) if suffix else 1e-5  # the natural STN moves the grid (1.2e-3 on an AMD EPYC)
    with torch.no_grad():
        assert max_diff(model(x), case[f"out_train{suffix}"]) < tol
        if model.stn:
            rectified, ctrl = model.rectify(x)
            assert max_diff(ctrl, case[f"train_ctrl_points{suffix}"]) < 1e-5
            assert max_diff(rectified[:1], case[f"train_rectified_sample0{suffix}"]) < 2e-3


@pytest.mark.parametrize("name", sorted(CASES))
def test_official_training_step_loss_and_gradients(name: str) -> None:
    """One step of the official loop, ``ImageLoss(edge)(model(lr), hr).mean() * 100`` backward,
    in train mode (natural STN start): the loss and the norm of every parameter's gradient.

    Analytically zero gradients are float noise (~1e-7) in both: the biases of convs followed by
    batch-statistics BN, and the whole STN head behind the zero ``stn_fc2.weight``."""
    case = REFERENCE.case(name)
    model = _rule_a(name, natural=CASES[name]["stn"]).train()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(case["input"].shape, generator=g)
    hr = torch.rand((2, x.shape[1], 32, 128), generator=g)
    assert float(hr.double().sum()) == float(case["trainstep_hr_sum"])
    loss = PCANLoss(scale=100.0)(model(x), hr)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(float(case["trainstep_loss_x100"]), rel=1e-5, abs=1e-5)
    norms = np.array([float(p.grad.norm()) if p.grad is not None else -1.0 for p in model.parameters()])
    want = case["trainstep_grad_norms"]
    assert norms.shape == want.shape and (want >= 0).all() and (want > 1e-3).sum() > 0.8 * len(want)
    np.testing.assert_allclose(norms, want, rtol=stn_tol(1e-4, 2e-2) if CASES[name]["stn"] else 1e-4, atol=1e-5)
    assert max_diff(model.block1[0].bias.grad, case["trainstep_grad_block1_0_bias"]) < stn_tol(1e-5, 2e-3) * float(
        np.abs(case["trainstep_grad_block1_0_bias"]).max())


def test_eval_mode_skips_the_stn_unless_asked() -> None:
    model = _rule_a("pcan", natural=True).eval()
    x = torch.from_numpy(REFERENCE.case("pcan")["input"])
    with torch.no_grad():
        plain = model(x)
        model.stn_at_test = True
        rectified = model(x)
    assert not torch.allclose(plain, rectified)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_checkpoint_loads_strictly(tmp_path: Path, prefix: str) -> None:
    source = _rule_a("pcan")
    state = {prefix + k: v for k, v in source.state_dict().items()}
    path = tmp_path / "model_best.pth"
    torch.save({"state_dict_G": state, "iters": 1}, path)
    model = load_official_pcan(PCAN(stn=True, mask=True), path)
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_mismatched_checkpoint_is_refused_with_keys() -> None:
    state = PCAN(stn=True, mask=True).state_dict()
    with pytest.raises(WeightsError, match="stn_head|tps"):
        load_pcan_state_dict(PCAN(stn=False, mask=True), state)
    with pytest.raises(WeightsError, match="block1.0.weight"):
        load_pcan_state_dict(PCAN(stn=True, mask=False), state)
    del state["spatial_attention.horizontal_conv_weight"]
    with pytest.raises(WeightsError, match="spatial_attention.horizontal_conv_weight"):
        load_pcan_state_dict(PCAN(stn=True, mask=True), state)


LOSS_TAGS = [(gp, eg) for gp in (False, True) for eg in (False, True)]


@pytest.mark.parametrize(("gradient", "edge"), LOSS_TAGS)
def test_loss_parity(gradient: bool, edge: bool) -> None:
    """``ImageLoss(gradient, edge, [1, 1e-4, 1e-4])`` on rand (2,4,32,128) pairs: value, parts, gradient."""
    case = REFERENCE.case("pcan_loss")
    scalars = json.loads((REF / "pcan_loss.case0.json").read_text())
    g = torch.Generator().manual_seed(0)
    sr = torch.rand((2, 4, 32, 128), generator=g)
    hr = torch.rand((2, 4, 32, 128), generator=g)
    assert float(sr.double().sum()) == float(case["sr_sum"]) and float(hr.double().sum()) == float(case["hr_sum"])
    tag = f"gp{int(gradient)}_eg{int(edge)}"
    loss_fn = PCANLoss(gradient=gradient, edge=edge)
    s = sr.clone().requires_grad_(True)
    loss = loss_fn(s, hr)
    loss.backward()
    assert abs(float(loss.detach()) - scalars[f"loss_{tag}"]) < 1e-5
    parts = loss_fn.parts
    assert set(parts) == {"mse", "loss"} | ({"gp"} if gradient else set()) | ({"eg"} if edge else set())
    for term in ("mse", "gp", "eg"):
        if term in parts:
            assert parts[term] == pytest.approx(scalars[f"{term}_term"], rel=1e-5)
    if edge:
        want = case[f"grad_sr_sample0_{tag}"]
        assert max_diff(s.grad[:1], want) < 1e-5 * float(np.abs(want).max())


def test_edge_map_is_the_official_map_of_each_channel() -> None:
    """The official (3,3,3,3)-expanded Sobel gives three equal channels, each our channel-sum map."""
    g = torch.Generator().manual_seed(0)
    sr = torch.rand((2, 4, 32, 128), generator=g)
    want = REFERENCE.case("pcan_loss")["edge_map_sr_sample0"]
    assert want.shape == (1, 3, 32, 128) and np.abs(want - want[:, :1]).max() == 0.0
    assert max_diff(edge_map(sr[:1, :3]).expand(-1, 3, -1, -1), want) < 1e-5


def test_loss_scale_weights_and_bad_input() -> None:
    g = torch.Generator().manual_seed(3)
    sr, hr = torch.rand((2, 3, 32, 128), generator=g), torch.rand((2, 3, 32, 128), generator=g)
    base = PCANLoss(gradient=True)
    value = float(base(sr, hr))
    parts = base.parts
    assert value == pytest.approx(parts["mse"] + 1e-4 * parts["gp"] + 1e-4 * parts["eg"], rel=1e-6)
    assert float(PCANLoss(gradient=True, scale=100.0)(sr, hr)) == pytest.approx(100 * value, rel=1e-6)
    only_edge = PCANLoss(mse_weight=0.0, eg_weight=1.0)
    assert float(only_edge(sr, hr)) == pytest.approx(parts["eg"], rel=1e-6)
    assert float(PCANLoss()(hr, hr)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        PCANLoss()(sr, hr[:, :, :16])
    with pytest.raises(ValueError, match="C >= 3"):
        PCANLoss()(sr[:, :1], hr[:, :1])


def test_every_official_parameter_learns() -> None:
    """Every parameter is reached (no frozen or dead module); with the STN, the first step only
    reaches ``stn_fc2``, since its weight starts at zero (the head behind it learns from then on)."""
    g = torch.Generator().manual_seed(1)
    lr, hr = torch.rand((2, 4, 16, 64), generator=g), torch.rand((2, 4, 32, 128), generator=g)
    torch.manual_seed(0)  # the constructor's init: a narrow SE layer can start with every ReLU unit dead
    model = PCAN(stn=False, mask=True, srb_nums=2, hidden_units=16).train()
    PCANLoss(gradient=True)(model(lr), hr).backward()
    for n, p in model.named_parameters():
        assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, n
    model = PCAN(stn=True, mask=True, srb_nums=2, hidden_units=8).train()
    PCANLoss()(model(lr), hr).backward()
    assert model.stn_head.stn_fc2.weight.grad.abs().sum() > 0 and model.stn_head.stn_fc2.bias.grad.abs().sum() > 0


def test_ci_sized_model_and_bad_input() -> None:
    model = PCAN(stn=True, mask=True, srb_nums=1, hidden_units=8).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 16, 64)).shape == (1, 4, 32, 128)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        PCAN(mask=False, stn=False)(torch.rand(1, 4, 16, 64))
    with pytest.raises(ValueError, match="at least 15x15"):
        PCAN(mask=False, stn=False, srb_nums=1, hidden_units=8)(torch.rand(1, 3, 8, 32))
    with pytest.raises(ValueError, match="hidden_units"):
        PCAN(hidden_units=2)
    with pytest.raises(ValueError, match="power of two"):
        PCAN(scale_factor=3)


def test_plugin_registers_pcan_and_its_loss() -> None:
    assert "pcan" in [s.name for s in register_sr_models()]
    spec = next(s for s in SUCCESSOR_SPECS if s.name == "pcan")
    assert resolve_target(spec.target) is PCAN and spec.default_loss == "pcan_loss" and spec.in_channels is None
    params = PCANParams()
    assert params.stn and params.mask  # the official README's command: --STN --mask
    model = PCAN(**params.model_dump())
    assert sum(p.numel() for p in model.parameters()) == 4_100_173
    loss_spec = next(s for s in register_losses() if s.name == "pcan_loss")
    assert resolve_target(loss_spec.target) is PCANLoss and loss_spec.params is PCANLossParams
    loss_params = PCANLossParams()
    assert loss_params.edge and not loss_params.gradient  # the official command: --edge, no --gradient
    with pytest.raises(ValueError):
        PCANParams(heads=4)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="texture attention"):
        PCANParams(hidden_units=4, srb_nums=1)
    assert PCANParams(hidden_units=4, srb_nums=2).srb_nums == 2
    with pytest.raises(ValueError):
        PCANLossParams(edge_weight=1.0)  # type: ignore[call-arg]
    catalog = tzbench.get_catalog()
    assert isinstance(catalog.create("losses", "pcan_loss", {"gradient": True}), PCANLoss)
    with pytest.raises(TzbenchError, match="sr model 'pcan'.*texture attention"):
        catalog.create("sr-models", "pcan", {"hidden_units": 4, "srb_nums": 1})


def test_runner_reads_an_official_checkpoint(tmp_path: Path) -> None:
    """``tzbench eval/sr pcan --checkpoint model_best.pth``: the runner's loader picks
    ``state_dict_G`` and loads it strictly into the registered default (STN + mask)."""
    from tzbench.runner.infer import load_model

    source = _rule_a("pcan")
    torch.save({"state_dict_G": {"module." + k: v for k, v in source.state_dict().items()}}, tmp_path / "best.pth")
    loaded = load_model(tzbench.get_catalog(), "pcan", tmp_path / "best.pth")
    assert loaded.source == "official" and loaded.info.in_channels == 4
    for k, v in source.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[k], v), k
