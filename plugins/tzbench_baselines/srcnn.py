"""SRCNN (Dong et al., ECCV 2014) as TextZoom configures it.

The official module upsamples the LR input with nearest x2 first, then runs the 9-1-5
convolution stack (ReLU after the first two) with no output activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tzbench_baselines._common import build_stn, check_input, rectify

__all__ = ["SRCNN"]


class SRCNN(nn.Module):
    """SRCNN for 3-channel input, scale 2.

    Args:
        width, height: HR size; with ``stn`` it sizes the TPS output (the official TPS grid of
            SRCNN is the HR size, so the warp replaces the nearest upsampling in training).
        stn: add TextZoom's TPS-STN (``tps.*``, ``stn_head.*``), applied in training only.
    """

    in_channels: int = 3
    scale: int = 2

    def __init__(self, width: int = 128, height: int = 32, stn: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=9, padding=4)
        self.conv2 = nn.Conv2d(64, 32, kernel_size=1, padding=0)
        self.conv3 = nn.Conv2d(32, 3, kernel_size=5, padding=2)
        self.stn = stn
        if stn:
            self.tps, self.stn_head = build_stn(3, (height, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, 2H, 2W)``."""
        check_input(x, 3, "srcnn")
        if self.stn and self.training:
            x = rectify(x, self.tps, self.stn_head)
        else:
            x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.conv3(x)
