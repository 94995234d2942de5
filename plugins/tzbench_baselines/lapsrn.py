"""LapSRN (Lai et al., CVPR 2017) with colour input, as TextZoom configures it.

A feature branch (10 conv3x3 + LeakyReLU(0.2), a 4x4 stride-2 transposed conv + LeakyReLU)
whose residual prediction (``convt_R1``) is added to a transposed-conv upsampling of the image
(``convt_I1``); no output activation. The x4 level (``convt_*2``) exists so official
checkpoints load strictly, but scale 2 never runs it. As in the official code, convs start from
N(0, sqrt(2 / (k * k * out_channels))) and transposed convs from a bilinear upsampling kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tzbench_baselines._common import (
    build_stn,
    check_input,
    init_conv_he_fan_out_,
    init_convt_bilinear_,
    rectify,
    sr_modules,
)

__all__ = ["LapSRN", "FeatureBlock"]

_SLOPE = 0.2


class FeatureBlock(nn.Module):
    """``num_layers`` x (conv3x3 + LeakyReLU) then a x2 transposed conv + LeakyReLU (no biases)."""

    def __init__(self, channels: int = 64, num_layers: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.LeakyReLU(_SLOPE)]
        layers += [
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False),
            nn.LeakyReLU(_SLOPE),
        ]
        self.cov_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cov_block(x)


class LapSRN(nn.Module):
    """LapSRN for 3-channel input, scale 2.

    Args:
        width, height: HR size; with ``stn`` the TPS output is the LR size (height/2, width/2).
        stn: add TextZoom's TPS-STN, applied in training only (as officially).
        num_layers: conv layers per feature branch (official 10).
        convt_init: ``official`` (bilinear on every channel pair, as TextZoom's code) or
            ``per_channel`` (bilinear on the diagonal only; see :func:`init_convt_bilinear_`).
    """

    in_channels: int = 3
    scale: int = 2

    def __init__(self, width: int = 128, height: int = 32, stn: bool = False, num_layers: int = 10,
                 convt_init: str = "official") -> None:
        super().__init__()
        if convt_init not in ("official", "per_channel"):
            raise ValueError(f"convt_init must be 'official' or 'per_channel', got {convt_init!r}")
        self.convt_init = convt_init
        c = 64
        self.conv_input = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.convt_I1 = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False)
        self.convt_R1 = nn.Conv2d(c, 3, 3, padding=1, bias=False)
        self.convt_F1 = nn.Sequential(FeatureBlock(c, num_layers))
        # The x4 level: kept for strict loading of official checkpoints, unused at scale 2.
        self.convt_I2 = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False)
        self.convt_R2 = nn.Conv2d(c, 3, 3, padding=1, bias=False)
        self.convt_F2 = nn.Sequential(FeatureBlock(c, num_layers))
        # Before the STN is built, so a seeded build draws in the official order.
        self.reset_parameters()
        self.stn = stn
        if stn:
            self.tps, self.stn_head = build_stn(3, (height // 2, width // 2))

    def reset_parameters(self) -> None:
        """The official init of everything but the STN (which keeps its own).

        Convs: N(0, sqrt(2 / (k * k * out_channels))). Transposed convs: the 4x4 bilinear
        kernel on every (in, out) channel pair, so ``convt_I1`` starts as a bilinear x2
        upsampling of the channel sum (see :func:`init_convt_bilinear_`). No layer has a bias.
        """
        for module in sr_modules(self):
            if isinstance(module, nn.Conv2d):
                init_conv_he_fan_out_(module)
            elif isinstance(module, nn.ConvTranspose2d):
                init_convt_bilinear_(module, per_channel=self.convt_init == "per_channel")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, 2H, 2W)``."""
        check_input(x, 3, "lapsrn")
        if self.stn and self.training:
            x = rectify(x, self.tps, self.stn_head)
        features = self.convt_F1(F.leaky_relu(self.conv_input(x), _SLOPE))
        return self.convt_I1(x) + self.convt_R1(features)
