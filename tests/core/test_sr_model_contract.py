"""The timm-style contract for every installed SR model not covered by the baselines' own test.

tests/plugins/test_baselines_contract.py runs the same checks on the eight baselines (with
RRDB/EDSR backward at reduced depth); this one covers every other plugin's models, so a newly
registered model is checked without anyone adding it to a list.
"""

from __future__ import annotations

import pytest
import torch

import tzbench

_CATALOG = tzbench.get_catalog()
OTHERS = [e.spec.name for e in _CATALOG.entries("sr-models") if e.plugin != "baselines"]


def test_tsrn_family_is_covered() -> None:
    assert {"tsrn", "tsrn_srb", "tsrn_srb_align"} <= set(OTHERS)


@pytest.mark.parametrize("name", OTHERS)
def test_sr_model_contract(name: str) -> None:
    spec = _CATALOG.spec("sr-models", name)
    model = _CATALOG.create("sr-models", name)
    params = _CATALOG.validate_params("sr-models", name).model_dump()
    channels = spec.in_channels or (4 if params.get("mask") else 3)
    torch.manual_seed(0)
    x = torch.rand(2, channels, 16, 64)
    model.train()
    y = model(x)
    assert y.shape == (2, channels, 32, 128)
    assert torch.isfinite(y).all()
    if spec.trainable:
        y.float().square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
