"""Weight initialisation of the SR models, as the official TextZoom code sets it up.

VDSR, EDSR and LapSRN re-draw their convs after construction with N(0, sqrt(2 / n)),
n = kH * kW * out_channels, and LapSRN starts its transposed convs as bilinear upsamplers; the
other models (SRCNN, SRResNet, RRDBNet, RDN, TSRN) keep PyTorch's defaults, as officially.
The functional VDSR test shows why it matters: under PyTorch's defaults its residual branch
vanishes and training never moves the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tzbench_baselines._common import bilinear_kernel, he_fan_out_std, init_conv_he_fan_out_
from tzbench_baselines.edsr import DIV2K_RGB_MEAN, EDSR, MeanShift
from tzbench_baselines.lapsrn import LapSRN
from tzbench_baselines.rdn import RDN
from tzbench_baselines.rrdb import RRDBNet
from tzbench_baselines.srcnn import SRCNN
from tzbench_baselines.srresnet import SRResNet
from tzbench_baselines.vdsr import VDSR
from tzbench_tsrn.tsrn import TSRN

REL_TOL = 0.10  # measured std vs formula; every checked conv has >= 1,728 weights (~2% noise)


def _seeded(factory: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return factory()


def _non_stn_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not name.startswith(("tps", "stn_head"))
    ]


def _torch_default_std(conv: nn.Conv2d) -> float:
    """Std of PyTorch's default conv init, Kaiming-uniform(a=sqrt(5)): 1 / sqrt(3 * fan_in)."""
    kh, kw = conv.kernel_size
    return 1.0 / math.sqrt(3 * (conv.in_channels // conv.groups) * kh * kw)


def _assert_std(name: str, weight: torch.Tensor, expected: float) -> None:
    measured = weight.detach().std().item()
    assert abs(measured / expected - 1.0) < REL_TOL, f"{name}: std {measured:.5f}, expected {expected:.5f}"


# --- the official He (fan-out) normal scheme -------------------------------------------------

HE_NORMAL_MODELS: dict[str, Callable[[], nn.Module]] = {
    "vdsr": lambda: VDSR(),
    "lapsrn": lambda: LapSRN(),
    # Full width (256 features; the std depends on out_channels only), 2 blocks to stay cheap.
    "edsr": lambda: EDSR(num_blocks=2),
}


@pytest.mark.parametrize("name", sorted(HE_NORMAL_MODELS))
def test_convs_follow_the_official_he_fan_out_normal(name: str) -> None:
    model = _seeded(HE_NORMAL_MODELS[name])
    convs = [(n, m) for n, m in _non_stn_convs(model) if not isinstance(m, MeanShift)]
    assert convs
    for conv_name, conv in convs:
        expected = math.sqrt(2.0 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels))
        assert he_fan_out_std(conv) == pytest.approx(expected)
        # PyTorch's default std lies outside the tolerance, so this check fails without the init.
        assert abs(_torch_default_std(conv) / expected - 1.0) > REL_TOL, conv_name
        _assert_std(f"{name}.{conv_name}", conv.weight, expected)
        assert abs(conv.weight.mean().item()) < 0.1 * expected, conv_name
        assert conv.bias is None  # none of these convs has a bias, officially too


def test_he_fan_out_init_zeroes_biases() -> None:
    conv = nn.Conv2d(8, 16, 3)
    init_conv_he_fan_out_(conv)
    assert torch.count_nonzero(conv.bias) == 0


# --- LapSRN: bilinear transposed convs --------------------------------------------------------


def test_bilinear_kernel_size_4_is_the_x2_bilinear_stencil() -> None:
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(bilinear_kernel(4), torch.outer(taps, taps), rtol=0, atol=0)
    # Odd sizes peak on the centre tap.
    torch.testing.assert_close(
        bilinear_kernel(3), torch.outer(torch.tensor([0.5, 1.0, 0.5]), torch.tensor([0.5, 1.0, 0.5]))
    )


def test_lapsrn_transposed_convs_start_as_bilinear_on_every_channel_pair() -> None:
    model = _seeded(LapSRN)
    convts = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ConvTranspose2d)]
    names = ["convt_I1", "convt_F1.0.cov_block.20", "convt_I2", "convt_F2.0.cov_block.20"]
    assert [n for n, _ in convts] == names
    for name, convt in convts:
        expected = bilinear_kernel(4).expand_as(convt.weight)
        torch.testing.assert_close(convt.weight.detach(), expected, rtol=0, atol=0, msg=name)


def test_lapsrn_image_branch_is_bilinear_upsampling_of_the_channel_sum() -> None:
    """Behaviour of that init: away from the border, convt_I1(x) = bilinear_x2(sum_c x_c)."""
    model = _seeded(LapSRN)
    x = torch.rand(2, 3, 16, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = model.convt_I1(x)
    ref = F.interpolate(x.sum(1, keepdim=True), scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref.expand_as(out)[..., 1:-1, 1:-1])


# --- EDSR: the frozen mean shift keeps its meaning --------------------------------------------


def test_edsr_mean_shift_is_not_redrawn() -> None:
    model = _seeded(lambda: EDSR(num_blocks=1, num_features=16))
    mean = torch.tensor(DIV2K_RGB_MEAN)
    for layer, sign in ((model.sub_mean, -1.0), (model.add_mean, 1.0)):
        torch.testing.assert_close(layer.weight.detach(), torch.eye(3).view(3, 3, 1, 1))
        torch.testing.assert_close(layer.bias.detach(), sign * mean)
        assert not layer.weight.requires_grad and not layer.bias.requires_grad


# --- the STN keeps its own init and does not shift the random stream --------------------------


@pytest.mark.parametrize("factory", [VDSR, LapSRN], ids=["vdsr", "lapsrn"])
def test_stn_variant_has_the_same_seeded_sr_weights(factory: Callable[..., nn.Module]) -> None:
    plain = _seeded(lambda: factory(stn=False)).state_dict()
    with_stn = _seeded(lambda: factory(stn=True)).state_dict()
    for key, value in plain.items():
        torch.testing.assert_close(with_stn[key], value, rtol=0, atol=0, msg=key)
    # stn_fc2 starts at zero weight (STNHead's own init): the model-level init left it alone.
    assert torch.count_nonzero(with_stn["stn_head.stn_fc2.weight"]) == 0


# --- models the official code leaves at PyTorch's defaults ------------------------------------

DEFAULT_INIT_MODELS: dict[str, Callable[[], nn.Module]] = {
    "srcnn": lambda: SRCNN(),
    "srresnet": lambda: SRResNet(),
    "rrdb": lambda: RRDBNet(num_blocks=1),
    "rdn": lambda: RDN(num_blocks=1),
    "tsrn": lambda: TSRN(stn=False, srb_nums=1),
}


@pytest.mark.parametrize("name", sorted(DEFAULT_INIT_MODELS))
def test_models_without_official_init_keep_pytorch_defaults(name: str) -> None:
    model = _seeded(DEFAULT_INIT_MODELS[name])
    for conv_name, conv in _non_stn_convs(model):
        if conv.weight.numel() < 1000:  # too few weights for a 10% std estimate
            continue
        _assert_std(f"{name}.{conv_name}", conv.weight, _torch_default_std(conv))


# --- why it matters: VDSR trains only under the official init --------------------------------


def _vdsr_losses(model: VDSR, steps: int = 5) -> list[float]:
    """L2 losses of ``steps`` Adam steps (lr 1e-3) towards bicubic x2, plus the final one."""
    x = torch.rand(2, 3, 16, 64, generator=torch.Generator().manual_seed(1))
    target = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss = F.mse_loss(model(x), target)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(F.mse_loss(model(x), target).item())
    return losses


def test_vdsr_trains_under_the_official_init_and_not_under_pytorch_defaults() -> None:
    official = _vdsr_losses(_seeded(VDSR))
    assert max(official) - min(official) > 0.1 * official[0], official
    assert official[-1] < official[0], official

    default = _seeded(VDSR)
    for module in default.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()  # PyTorch's default init
    stuck = _vdsr_losses(default)
    # The residual branch is ~0, so the output is the nearest upsampling and nothing moves.
    assert max(stuck) - min(stuck) < 1e-6 * stuck[0], stuck


def test_lapsrn_per_channel_convt_init_upsamples_each_channel() -> None:
    """``convt_init='per_channel'``: the image branch starts as a bilinear x2 of each channel;
    the official init starts it as the bilinear x2 of the channels' *sum* (3x too bright)."""
    from tzbench_baselines.lapsrn import LapSRN

    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 64)
    per = LapSRN(convt_init="per_channel").convt_I1(x).detach()
    off = LapSRN().convt_I1(x).detach()
    for c in range(3):
        torch.testing.assert_close(off[:, c], per.sum(1), rtol=1e-5, atol=1e-5)
    bilinear = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(per[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="convt_init"):
        LapSRN(convt_init="diagonal")
