"""SRResNet (Ledig et al., CVPR 2017) as TextZoom configures it.

9x9 conv + PReLU head, five residual blocks (conv-BN-PReLU-conv-BN + skip), a conv-BN tail
added to the head output, one sub-pixel x2 stage (conv, PixelShuffle, PReLU), a 9x9 output conv
and ``tanh``. Unlike the other baselines it follows ``mask``: 4 channels in and out when true.
"""

from __future__ import annotations

import torch
from torch import nn

from tzbench_baselines._common import build_stn, check_input, rectify

__all__ = ["SRResNet", "ResidualBlock", "UpsampleBlock"]

_FEATURES = 64


class ResidualBlock(nn.Module):
    """conv3x3 -> BN -> PReLU -> conv3x3 -> BN, plus the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))
        return x + residual


class UpsampleBlock(nn.Module):
    """Sub-pixel upsampling: conv to ``channels * scale**2``, PixelShuffle, PReLU."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * scale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(scale)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """SRResNet, scale 2; output in ``[-1, 1]`` (``tanh``), as in the official code.

    Args:
        width, height: HR size; with ``stn`` the TPS output is the LR size (height/2, width/2).
        stn: add TextZoom's TPS-STN, applied in training only (as officially).
        mask: 4 channels (RGB + mask) in and out when true, 3 otherwise.
    """

    scale: int = 2

    def __init__(
        self, width: int = 128, height: int = 32, stn: bool = False, mask: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = 4 if mask else 3
        c = _FEATURES
        self.block1 = nn.Sequential(nn.Conv2d(self.in_channels, c, kernel_size=9, padding=4), nn.PReLU())
        # Official attribute names block2..block6; kept so official checkpoints load strictly.
        self.block2 = ResidualBlock(c)
        self.block3 = ResidualBlock(c)
        self.block4 = ResidualBlock(c)
        self.block5 = ResidualBlock(c)
        self.block6 = ResidualBlock(c)
        self.block7 = nn.Sequential(nn.Conv2d(c, c, kernel_size=3, padding=1), nn.BatchNorm2d(c))
        self.block8 = nn.Sequential(
            UpsampleBlock(c, self.scale),
            nn.Conv2d(c, self.in_channels, kernel_size=9, padding=4),
        )
        self.stn = stn
        if stn:
            self.tps, self.stn_head = build_stn(self.in_channels, (height // 2, width // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)`` in ``[-1, 1]``, C = 4 with mask else 3."""
        check_input(x, self.in_channels, "srresnet")
        if self.stn and self.training:
            x = rectify(x, self.tps, self.stn_head)
        head = self.block1(x)
        body = self.block6(self.block5(self.block4(self.block3(self.block2(head)))))
        return torch.tanh(self.block8(head + self.block7(body)))
