"""Small pieces shared by the baseline models: input checks, the optional TPS-STN and the
weight initialisers some official models apply after construction.

The STN classes are a core layer (``tzbench.layers.tps``, shared with TSRN and ASTER); they
are imported only when a model is built with ``stn=True``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "check_input",
    "build_stn",
    "rectify",
    "STN_PREFIXES",
    "sr_modules",
    "he_fan_out_std",
    "init_conv_he_fan_out_",
    "bilinear_kernel",
    "init_convt_bilinear_",
]

#: Attribute names of the optional STN; model-level initialisers leave these submodules alone
#: because the official models build their STN after their init loop (it keeps its own init).
STN_PREFIXES: tuple[str, ...] = ("tps", "stn_head")


def check_input(x: torch.Tensor, channels: int, model: str) -> None:
    """Raise a clear error unless ``x`` is a float ``(B, channels, H, W)`` batch."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{model} expects a (B, {channels}, H, W) batch, got shape {tuple(x.shape)}"
        )


def build_stn(in_planes: int, output_size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
    """Return ``(tps, stn_head)`` configured as in TextZoom (20 points, margins 0.05)."""
    from tzbench.layers.tps import STNHead, TPSSpatialTransformer

    tps = TPSSpatialTransformer(
        output_image_size=output_size, num_control_points=20, margins=(0.05, 0.05)
    )
    stn_head = STNHead(in_planes=in_planes)
    return tps, stn_head


def rectify(x: torch.Tensor, tps: nn.Module, stn_head: nn.Module) -> torch.Tensor:
    """Warp ``x`` with the STN the way TSRN does: resize to 32x64, predict points, sample.

    The official baselines fed the raw 16x64 LR image to the head, whose five 2x2 poolings
    then reach zero height and crash; TSRN's resize is the working variant of the same idea.
    The output has the TPS output size (the HR size for SRCNN/VDSR, the LR size otherwise).
    """
    from tzbench.layers.tps import STN_INPUT_SIZE

    x = F.interpolate(x, STN_INPUT_SIZE, mode="bilinear", align_corners=True)
    _, ctrl = stn_head(x)
    rectified, _ = tps(x, ctrl)
    return rectified


def sr_modules(model: nn.Module) -> Iterator[nn.Module]:
    """Yield ``model``'s submodules in registration order, skipping the STN (``tps``, ``stn_head``).

    Registration order is the order the official init loops visit (and draw random numbers in).
    """
    for name, module in model.named_modules():
        if name.split(".", 1)[0] not in STN_PREFIXES:
            yield module


def he_fan_out_std(conv: nn.Conv2d) -> float:
    """``sqrt(2 / n)`` with ``n = kH * kW * out_channels``: He init counted on the output side."""
    kh, kw = conv.kernel_size
    return math.sqrt(2.0 / (kh * kw * conv.out_channels))


def init_conv_he_fan_out_(conv: nn.Conv2d) -> None:
    """Draw ``conv.weight`` from N(0, he_fan_out_std(conv)) and zero its bias, if any.

    This is the scheme of the VDSR/EDSR/LapSRN reference code. PyTorch's default
    (Kaiming-uniform with a = sqrt(5), std = 1/sqrt(3 * fan_in)) is about 2.4x smaller for a
    64-channel 3x3 conv, small enough that deep bias-free ReLU stacks start near zero output.
    """
    nn.init.normal_(conv.weight, 0.0, he_fan_out_std(conv))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def bilinear_kernel(size: int) -> torch.Tensor:
    """The ``(size, size)`` bilinear-interpolation kernel used to start transposed convs.

    For ``size = 2 * s`` and stride ``s`` (padding ``s // 2``) a transposed conv with this
    kernel performs bilinear upsampling by ``s``; e.g. size 4 gives the separable 1-D taps
    ``(0.25, 0.75, 0.75, 0.25)``.
    """
    factor = (size + 1) // 2
    # The kernel peaks on a tap for odd sizes and between the two middle taps for even ones.
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1.0 - (torch.arange(size, dtype=torch.float64) - center).abs() / factor
    return torch.outer(taps, taps).to(torch.float32)


@torch.no_grad()
def init_convt_bilinear_(convt: nn.ConvTranspose2d, per_channel: bool = False) -> None:
    """Set every (in, out) channel pair of ``convt`` to the bilinear kernel; zero its bias.

    Every pair, not only the diagonal: that is what the LapSRN reference code does (it comes
    from a grayscale model, where the two coincide), so with C input channels each output
    channel starts as the bilinear upsampling of the *sum* of the inputs. ``per_channel``
    fills only the diagonal (the other pairs zero): each output channel starts as the bilinear
    upsampling of its own input channel.
    """
    kh, kw = convt.kernel_size
    if kh != kw:
        raise ValueError(f"bilinear init needs a square kernel, got {kh}x{kw}")
    kernel = bilinear_kernel(kh).expand_as(convt.weight)
    if per_channel:
        if convt.in_channels != convt.out_channels or convt.groups != 1:
            raise ValueError("per-channel bilinear init needs in_channels == out_channels and groups 1")
        kernel = kernel * torch.eye(convt.in_channels, dtype=kernel.dtype)[:, :, None, None]
    convt.weight.copy_(kernel)
    if convt.bias is not None:
        convt.bias.zero_()
