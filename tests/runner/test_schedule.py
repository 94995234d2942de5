"""The cpu recipe's tools: warm-up + cosine lr per update, and the weight EMA used for selection."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from tzbench.config import OptimConfig
from tzbench.runner.schedule import EMA_PREFIX, WeightAverage, make_scheduler


def _lrs(optim: OptimConfig, total: int) -> list[float]:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=optim.lr)
    sched = make_scheduler(opt, optim, total)
    out = []
    for k in range(total):
        if sched is not None:
            sched.step_update(k)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_warmup_then_cosine_per_update() -> None:
    optim = OptimConfig(lr=1e-3, schedule="cosine", warmup_steps=10, warmup_init_ratio=0.01, min_lr_ratio=0.05)
    lrs = _lrs(optim, 110)
    assert lrs[0] == pytest.approx(1e-5)
    assert lrs[5] == pytest.approx(1e-5 + 5 * (1e-3 - 1e-5) / 10)  # linear warm-up
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 10
    after = lrs[10:]
    assert all(a >= b for a, b in zip(after, after[1:]))  # decays monotonically
    # half-way through the cosine: the mean of peak and floor
    assert lrs[60] == pytest.approx(5e-5 + 0.5 * (1e-3 - 5e-5) * (1 + math.cos(math.pi * 50 / 100)), rel=1e-6)
    assert lrs[-1] > 5e-5 and lrs[-1] < 6e-5


def test_constant_schedule_keeps_the_lr() -> None:
    assert set(_lrs(OptimConfig(lr=3e-4), 20)) == {3e-4}


def test_warmup_needs_the_cosine_schedule() -> None:
    with pytest.raises(ValidationError, match="warmup_steps needs"):
        OptimConfig(warmup_steps=5)


def test_weight_average_follows_timm_warmup_and_round_trips() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    ema = WeightAverage(net, decay=0.9)
    ref = net[0].weight.detach().clone()
    for step in range(1, 30):
        with torch.no_grad():
            net[0].weight.add_(torch.randn_like(net[0].weight))
        net.train()(torch.randn(4, 3))  # moves the BN running statistics too
        ema.update(net, step)
        t = step - 1  # timm: no averaging on the first update, then 1 - (1 + t)^(-2/3) capped at decay
        d = 0.0 if t <= 0 else min(1 - (1 + t) ** (-2 / 3), 0.9)
        ref = d * ref + (1 - d) * net[0].weight.detach()
    torch.testing.assert_close(ema.module[0].weight, ref, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ema.module[0].weight, net[0].weight)
    assert not torch.equal(ema.module[1].running_mean, torch.zeros(2))  # buffers are averaged too

    state = ema.state_tensors()
    assert all(k.startswith(EMA_PREFIX) for k in state)
    other = WeightAverage(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)), decay=0.9)
    other.load_state_tensors(state)
    for k, v in ema.module.state_dict().items():
        assert torch.equal(other.module.state_dict()[k], v), k
    with pytest.raises(KeyError, match="ema"):
        other.load_state_tensors({"model.0.weight": torch.zeros(2, 3)})


def test_selection_ties_go_to_the_higher_psnr() -> None:
    from tzbench.runner.train import _improves

    assert _improves(0.5, 20.0, None, None)
    assert _improves(0.6, 10.0, 0.5, 20.0)
    assert not _improves(0.4, 30.0, 0.5, 20.0)
    assert _improves(0.5, 21.0, 0.5, 20.0)  # a tie in accuracy, higher PSNR
    assert not _improves(0.5, 20.0, 0.5, 20.0)  # the earlier checkpoint keeps an exact tie
    assert _improves(0.5, 20.0, 0.5, None)  # resumed from a checkpoint that recorded no PSNR


class _BNUpsampler(torch.nn.Module):
    """x2 nearest + BatchNorm: in train mode BN uses the batch's statistics, in eval its running ones."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(3)
        with torch.no_grad():  # running statistics far from any batch's: the two modes disagree
            self.bn.running_mean.fill_(0.3)
            self.bn.running_var.fill_(4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


def test_validation_scores_the_eval_mode_model_and_restores_training_mode() -> None:
    """Selection must see what eval and inference see (BatchNorm running statistics, not the
    validation batch's own), and training must continue in train mode."""
    from tzbench.metrics import psnr_per_image
    from tzbench.runner.distributed import DistContext
    from tzbench.runner.train import Selection, _validate

    torch.manual_seed(0)
    lr8 = torch.randint(0, 256, (6, 3, 16, 64), dtype=torch.uint8)
    hr8 = torch.randint(0, 256, (6, 3, 32, 128), dtype=torch.uint8)
    ds = [{"lr": lr8[i], "hr": hr8[i], "label": "x", "index": i} for i in range(6)]  # items as datasets give them
    lr, hr = lr8 / 255.0, hr8 / 255.0
    net = _BNUpsampler().train()
    v = _validate(net, Selection("clean", None, {"val": ds}, limit=6), torch.device("cpu"), 4, DistContext())
    assert net.training
    with torch.no_grad():
        want_eval = float(psnr_per_image(net.eval()(lr).clamp(0, 1), hr).mean())
        want_train = float(psnr_per_image(net.train()(lr).clamp(0, 1), hr).mean())
    assert abs(want_eval - want_train) > 0.5  # the check below can tell the modes apart
    assert v["val"]["psnr"] == pytest.approx(want_eval, abs=1e-4)
