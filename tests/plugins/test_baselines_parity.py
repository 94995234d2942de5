"""Parity of the baselines with the official TextZoom implementation (shared/reference).

For every model: the ordered state-dict layout (so official checkpoints load strictly), the
parameter counts of ``param_counts.json`` and the eval output under rule-A weights on the
reference input (atol = rtol = 1e-5, the reference README's SR tolerance).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from reference_cases import apply_rule_a, load_case, load_keys, reference_dir, state_dict_layout
from tzbench.weights import load_strict
from tzbench_baselines.edsr import EDSR
from tzbench_baselines.lapsrn import LapSRN
from tzbench_baselines.rdn import RDN
from tzbench_baselines.rrdb import RRDBNet
from tzbench_baselines.srcnn import SRCNN
from tzbench_baselines.srresnet import SRResNet
from tzbench_baselines.vdsr import VDSR

# reference name -> constructor as base.py calls it (official names in the reference files)
FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "srcnn": lambda: SRCNN(width=128, height=32, stn=False),
    "vdsr": lambda: VDSR(width=128, height=32, stn=False),
    "srres": lambda: SRResNet(width=128, height=32, stn=False, mask=True),
    "srres_nomask": lambda: SRResNet(width=128, height=32, stn=False, mask=False),
    "esrgan": lambda: RRDBNet(),
    "rdn": lambda: RDN(),
    "edsr": lambda: EDSR(),
    "lapsrn": lambda: LapSRN(width=128, height=32, stn=False),
}
STN_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "srcnn_stn": lambda: SRCNN(stn=True),
    "vdsr_stn": lambda: VDSR(stn=True),
    "srres_stn": lambda: SRResNet(stn=True, mask=True),
    "lapsrn_stn": lambda: LapSRN(stn=True),
}
# the STN variant -> the plain reference case with the same non-STN weights
STN_PLAIN_CASE = {"srcnn_stn": "srcnn", "vdsr_stn": "vdsr", "srres_stn": "srres", "lapsrn_stn": "lapsrn"}


@cache
def _counts() -> dict[str, dict]:
    return json.loads((reference_dir() / "param_counts.json").read_text(encoding="utf-8"))


@cache
def _model(name: str) -> nn.Module:
    """One rule-A model per reference name, shared by the tests of this module."""
    factory = FACTORIES.get(name) or STN_FACTORIES[name]
    return apply_rule_a(factory()).eval()


@pytest.mark.parametrize("name", [*FACTORIES, *STN_FACTORIES])
def test_state_dict_layout_matches_official(name: str) -> None:
    assert state_dict_layout(_model(name)) == load_keys(name)


@pytest.mark.parametrize("name", [*FACTORIES, *STN_FACTORIES])
def test_param_counts_match_official(name: str) -> None:
    model, ref = _model(name), _counts()[name]
    params = list(model.parameters())
    assert sum(p.numel() for p in params) == ref["param_count"]
    assert sum(p.numel() for p in params if p.requires_grad) == ref["trainable_param_count"]
    assert len(model.state_dict()) == ref["state_dict_entries"]


@pytest.mark.parametrize("name", list(FACTORIES))
def test_rule_a_output_matches_official(name: str) -> None:
    case = load_case(name)
    x = torch.from_numpy(case["input"])
    assert x.shape[1] == _counts()[name]["input_channels"]
    with torch.no_grad():
        out = _model(name)(x).numpy()
    expected = case["out_eval"]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(STN_FACTORIES))
def test_stn_variant_skips_stn_in_eval(name: str) -> None:
    """Rule A seeds per key, so the STN variant's shared weights equal the plain model's:
    in eval its output is exactly the official plain output (the STN is training-only)."""
    case = load_case(STN_PLAIN_CASE[name])
    model = _model(name)
    assert not model.training
    with torch.no_grad():
        out = model(torch.from_numpy(case["input"])).numpy()
    np.testing.assert_allclose(out, case["out_eval"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(STN_FACTORIES))
def test_stn_variant_trains_on_16x64_input(name: str) -> None:
    """The official STN baselines crash on 16x64 LR (the head pools to zero height); ours
    resize to 32x64 first, warp in training and backpropagate into the STN head."""
    model = STN_FACTORIES[name]().train()
    x = torch.rand(2, model.in_channels, 16, 64)
    out = model(x)
    assert out.shape == (2, model.in_channels, 32, 128)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    head_grad = model.stn_head.stn_fc2.weight.grad
    assert head_grad is not None and head_grad.abs().sum() > 0


def test_official_checkpoint_layout_loads_with_module_prefix() -> None:
    """An official DataParallel-style state dict (``module.`` keys) loads strictly."""
    state = {f"module.{k}": v.clone() for k, v in _model("srcnn").state_dict().items()}
    fresh = load_strict(SRCNN(), state, source="srcnn.pth")
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, state[f"module.{k}"])


def test_edsr_mean_shift_is_frozen_but_in_state_dict() -> None:
    model = _model("edsr")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"}
    fresh = EDSR(num_blocks=1, num_features=8)
    # Constructor value: identity weights, -/+ DIV2K mean as bias.
    x = torch.rand(1, 3, 4, 4)
    assert torch.allclose(fresh.add_mean(fresh.sub_mean(x)), x, atol=1e-6)
