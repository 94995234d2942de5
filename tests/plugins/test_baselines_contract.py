"""The baselines' registration and their model-specific behaviour.

The generic SR-model contract (shapes, gradients, determinism) runs on every installed model,
the baselines included, through ``tzbench.testing.check_sr_model`` in
tests/core/test_sr_model_contract.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tzbench.specs import SRModelSpec, resolve_target
from tzbench.testing import check_sr_model
from tzbench_baselines.plugin import BASELINE_SPECS, register_sr_models

SPECS = {spec.name: spec for spec in BASELINE_SPECS}
DEFAULT_LOSSES = {
    "bicubic": "l2",
    "srcnn": "l2",
    "vdsr": "l2",
    "srresnet": "srresnet_loss",
    "rrdb": "l1",
    "edsr": "l1",
    "rdn": "l1",
    "lapsrn": "charbonnier",
}


def _create(spec: SRModelSpec, **user: object) -> nn.Module:
    return resolve_target(spec.target)(**spec.params(**user).model_dump())


def test_plugin_registers_the_eight_baselines() -> None:
    specs = register_sr_models()
    assert [s.name for s in specs] == list(DEFAULT_LOSSES)
    for spec in specs:
        assert isinstance(spec, SRModelSpec)
        assert spec.scale == 2
        assert spec.default_loss == DEFAULT_LOSSES[spec.name]
        assert spec.paper and spec.summary
        assert spec.trainable is (spec.name != "bicubic")
    assert SPECS["srresnet"].in_channels is None  # follows its `mask` param


def test_params_reject_unknown_fields() -> None:
    with pytest.raises(ValueError):
        SPECS["srcnn"].params(STN=True)  # the official spelling is not a tzbench param


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rrdb", "edsr"])
def test_heavy_model_backward_full_depth(name: str) -> None:
    """The default run checks these at reduced depth (tests/core/test_sr_model_contract.py)."""
    check_sr_model(SPECS[name])


def test_bicubic_handles_mask_channel_and_clamps() -> None:
    model = _create(SPECS["bicubic"]).eval()
    x = torch.zeros(1, 4, 16, 64)
    x[..., ::2] = 1.0  # a stripe pattern makes bicubic overshoot outside [0, 1]
    out = model(x)
    assert out.shape == (1, 4, 32, 128)
    assert out.min() >= 0.0 and out.max() <= 1.0
    raw = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert raw.min() < 0.0 and raw.max() > 1.0
    assert torch.equal(out, raw.clamp(0, 1))


def test_srresnet_channels_follow_mask() -> None:
    model = _create(SPECS["srresnet"], mask=False).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 16, 64))
    assert out.shape == (1, 3, 32, 128)
    assert out.abs().max() <= 1.0  # tanh output


def test_rgb_model_rejects_mask_input_clearly() -> None:
    model = _create(SPECS["srcnn"])
    with pytest.raises(ValueError, match=r"srcnn expects a \(B, 3, H, W\) batch"):
        model(torch.rand(1, 4, 16, 64))


def test_plugin_module_does_not_import_torch() -> None:
    """`tzbench list` must stay cheap: registering the baselines imports no model code."""
    import subprocess
    import sys

    code = "import sys, tzbench_baselines.plugin; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
