"""TSRN's x2 sub-pixel upsampling stage, which its successors (tbsrn, pcan, tpgsr, tatt) repeat as is."""

from __future__ import annotations

import math

from torch import Tensor, nn

from tzbench.layers.recurrent import Mish

__all__ = ["UpsampleBlock", "upsample_stages"]


def upsample_stages(scale_factor: int) -> int:
    """How many x2 :class:`UpsampleBlock` stages make ``scale_factor``: its log2, which must be whole."""
    stages = int(math.log2(scale_factor)) if scale_factor >= 1 else -1
    if stages < 0 or 2**stages != scale_factor:
        raise ValueError(f"scale_factor must be a power of two, got {scale_factor}")
    return stages


class UpsampleBlock(nn.Module):
    """Conv3x3(C -> C*r^2) + PixelShuffle(r) + mish; the official keys ``conv.*`` (``prelu`` is a mish)."""

    def __init__(self, channels: int, up_scale: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * up_scale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(up_scale)
        self.prelu = Mish()

    def forward(self, x: Tensor) -> Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))
