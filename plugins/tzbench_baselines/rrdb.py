"""RRDBNet, the ESRGAN generator (Wang et al., ECCVW 2018), as TextZoom configures it.

A conv head, a trunk of residual-in-residual dense blocks (each three 5-conv dense blocks
with 0.2 residual scaling), a trunk conv added to the head, then nearest x2 + ``upconv1`` +
LeakyReLU(0.2), ``HRconv`` + LeakyReLU(0.2) and ``conv_last``; no output activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tzbench_baselines._common import check_input

__all__ = ["RRDBNet", "RRDB", "ResidualDenseBlock5C"]

_SLOPE = 0.2
_RES_SCALE = 0.2


class ResidualDenseBlock5C(nn.Module):
    """Five densely connected 3x3 convs; the last one's output is scaled by 0.2 and added."""

    def __init__(self, num_features: int = 64, growth: int = 32) -> None:
        super().__init__()
        nf, gc = num_features, growth
        self.conv1 = nn.Conv2d(nf, gc, 3, padding=1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, padding=1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, padding=1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, padding=1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), _SLOPE))
        return self.conv5(torch.cat(feats, 1)) * _RES_SCALE + x


class RRDB(nn.Module):
    """Three dense blocks in sequence, with a 0.2-scaled residual around them."""

    def __init__(self, num_features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock5C(num_features, growth)
        self.RDB2 = ResidualDenseBlock5C(num_features, growth)
        self.RDB3 = ResidualDenseBlock5C(num_features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.RDB3(self.RDB2(self.RDB1(x))) * _RES_SCALE + x


class RRDBNet(nn.Module):
    """ESRGAN's generator for 3-channel input, scale 2 (one nearest-upsampling stage).

    Args:
        num_features: ``nf`` (official 64).
        num_blocks: ``nb``, RRDBs in the trunk (official 23).
        growth: ``gc``, growth channels (official 32).
    """

    in_channels: int = 3
    scale: int = 2

    def __init__(self, num_features: int = 64, num_blocks: int = 23, growth: int = 32) -> None:
        super().__init__()
        nf = num_features
        self.conv_first = nn.Conv2d(3, nf, 3, padding=1)
        self.RRDB_trunk = nn.Sequential(*(RRDB(nf, growth) for _ in range(num_blocks)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.HRconv = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, 2H, 2W)``."""
        check_input(x, 3, "rrdb")
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = F.interpolate(fea, scale_factor=self.scale, mode="nearest")
        fea = F.leaky_relu(self.upconv1(fea), _SLOPE)
        return self.conv_last(F.leaky_relu(self.HRconv(fea), _SLOPE))
