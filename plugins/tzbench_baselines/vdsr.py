"""VDSR (Kim et al., CVPR 2016) as TextZoom configures it.

Nearest x2 upsampling, then ``input`` conv + ReLU, ``num_layers`` bias-free 3x3 conv + ReLU
blocks and an ``output`` conv; the result is added to the upsampled input (global residual).
Every conv starts from N(0, sqrt(2 / (k * k * out_channels))), as in the official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tzbench_baselines._common import (
    build_stn,
    check_input,
    init_conv_he_fan_out_,
    rectify,
    sr_modules,
)

__all__ = ["VDSR", "ConvReLU"]


class ConvReLU(nn.Module):
    """A bias-free 3x3 conv followed by ReLU (key ``conv``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class VDSR(nn.Module):
    """VDSR for 3-channel input, scale 2.

    Args:
        width, height: HR size; with ``stn`` it sizes the TPS output, which replaces the
            nearest upsampling (and the residual) in training.
        stn: add TextZoom's TPS-STN, applied in training only.
        num_layers: middle conv+ReLU layers (official 18).
        num_features: channels of the conv stack (official 64).
    """

    in_channels: int = 3
    scale: int = 2

    def __init__(
        self,
        width: int = 128,
        height: int = 32,
        stn: bool = False,
        num_layers: int = 18,
        num_features: int = 64,
    ) -> None:
        super().__init__()
        self.residual_layer = nn.Sequential(*(ConvReLU(num_features) for _ in range(num_layers)))
        self.input = nn.Conv2d(3, num_features, kernel_size=3, padding=1, bias=False)
        self.output = nn.Conv2d(num_features, 3, kernel_size=3, padding=1, bias=False)
        # Before the STN is built, so a seeded build draws in the official order.
        self.reset_parameters()
        self.stn = stn
        if stn:
            self.tps, self.stn_head = build_stn(3, (height, width))

    def reset_parameters(self) -> None:
        """Re-draw every conv (not the STN) from N(0, sqrt(2 / (k * k * out_channels))).

        The official scheme. It matters here: under PyTorch's default init the 20 bias-free
        conv+ReLU layers shrink the residual branch to ~1e-8, and Adam training leaves the
        loss where it is, at nearest upsampling (tests/plugins/test_baselines_init.py).
        """
        for module in sr_modules(self):
            if isinstance(module, nn.Conv2d):
                init_conv_he_fan_out_(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, 2H, 2W)``."""
        check_input(x, 3, "vdsr")
        if self.stn and self.training:
            x = rectify(x, self.tps, self.stn_head)
        else:
            x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        out = F.relu(self.input(x))
        out = self.residual_layer(out)
        return self.output(out) + x
