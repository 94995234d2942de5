"""text_prior: base SR loss + KL of a frozen CTC judge's per-frame readings of SR and HR."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import tzbench
from tzbench.catalog import CatalogError


def _loss(**params):
    return tzbench.get_catalog().create("losses", "text_prior", params)


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 4, 32, 128, generator=g), torch.rand(3, 4, 32, 128, generator=g)


def test_value_is_base_plus_weighted_kl_of_the_judges_readings() -> None:
    sr, hr = _pair()
    loss = _loss(weight=0.5, temperature=2.0)
    judge = tzbench.create_recognizer("crnn_tz", device="cpu")
    with torch.no_grad():
        t = F.log_softmax(judge.ctc_logits(hr[:, :3]) / 2.0, -1)
        p = F.log_softmax(judge.ctc_logits(sr[:, :3]) / 2.0, -1)
    kl = (t.exp() * (t - p)).sum(-1).mean()
    base = tzbench.get_catalog().create("losses", "tsrn_loss", {})(sr, hr)
    assert float(loss(sr, hr)) == pytest.approx(float(base + 0.5 * kl), rel=1e-5)
    assert set(loss.parts) == {"mse", "gp", "text", "loss"} and loss.parts["text"] == pytest.approx(float(kl), rel=1e-5)
    assert float(_loss()(hr, hr)) == pytest.approx(0.0, abs=1e-6)  # SR == HR: nothing to pay


def test_gradients_reach_sr_only_and_the_judge_is_not_saved() -> None:
    sr, hr = _pair(1)
    sr.requires_grad_(True)
    loss = _loss(base="l2", weight=1.0)
    loss.train()
    loss(sr, hr).backward()
    assert sr.grad is not None and float(sr.grad[:, :3].abs().sum()) > 0
    judge = loss._judge
    assert not judge.net.training and all(p.grad is None and not p.requires_grad for p in judge.net.parameters())
    assert list(loss.state_dict()) == [] and list(loss.parameters()) == []
    # without the text term the RGB gradient is the plain MSE gradient
    sr2 = sr.detach().clone().requires_grad_(True)
    _loss(base="l2", weight=0.0)(sr2, hr).backward()
    assert torch.allclose(sr2.grad, 2 * (sr2 - hr).detach() / sr2.numel(), atol=1e-9)


def test_bad_params_name_the_problem() -> None:
    with pytest.raises(ValueError, match="no ctc_logits"):
        _loss(judge="ppocr")
    with pytest.raises(CatalogError, match="weight"):
        _loss(weight=-1)
    with pytest.raises(CatalogError, match="unknown loss 'tsrn_los'"):
        _loss(base="tsrn_los")
