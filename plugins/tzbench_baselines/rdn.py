"""RDN (Zhang et al., CVPR 2018) as TextZoom configures it (3 blocks x 6 dense layers).

Two shallow convs, residual dense blocks (bias-free dense 3x3 conv + ReLU layers, a bias-free
1x1 local fusion and a local skip), global feature fusion (1x1 then 3x3) plus the first conv's
output, a sub-pixel x2 stage and an output conv; no output activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tzbench_baselines._common import check_input

__all__ = ["RDN", "RDB", "DenseLayer"]


class DenseLayer(nn.Module):
    """A bias-free 3x3 conv + ReLU whose output is concatenated to its input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, F.relu(self.conv(x))), 1)


class RDB(nn.Module):
    """Residual dense block: dense layers, a bias-free 1x1 fusion, plus the block input."""

    def __init__(self, channels: int, num_layers: int, growth: int) -> None:
        super().__init__()
        self.dense_layers = nn.Sequential(
            *(DenseLayer(channels + i * growth, growth) for i in range(num_layers))
        )
        self.conv_1x1 = nn.Conv2d(channels + num_layers * growth, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_1x1(self.dense_layers(x)) + x


class RDN(nn.Module):
    """RDN for 3-channel input, scale 2.

    Args:
        num_features: channels (official 64).
        growth: growth rate of the dense layers (official 32).
        num_blocks: residual dense blocks, named ``RDB1``.. (official 3).
        num_layers: dense layers per block (official 6).
    """

    in_channels: int = 3
    scale: int = 2

    def __init__(
        self, num_features: int = 64, growth: int = 32, num_blocks: int = 3, num_layers: int = 6
    ) -> None:
        super().__init__()
        c = num_features
        self.num_blocks = num_blocks
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        # Official attribute names RDB1..RDBn, so official checkpoints load strictly.
        for i in range(1, num_blocks + 1):
            self.add_module(f"RDB{i}", RDB(c, num_layers, growth))
        self.GFF_1x1 = nn.Conv2d(c * num_blocks, c, 1)
        self.GFF_3x3 = nn.Conv2d(c, c, 3, padding=1)
        self.conv_up = nn.Conv2d(c, c * self.scale**2, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(self.scale)
        self.conv3 = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, 2H, 2W)``."""
        check_input(x, 3, "rdn")
        shallow = self.conv1(x)
        out = self.conv2(shallow)
        block_outputs = []
        for i in range(1, self.num_blocks + 1):
            out = getattr(self, f"RDB{i}")(out)
            block_outputs.append(out)
        fused = self.GFF_3x3(self.GFF_1x1(torch.cat(block_outputs, 1))) + shallow
        return self.conv3(self.pixel_shuffle(self.conv_up(fused)))
