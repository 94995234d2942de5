"""TSRN's reference building blocks that TSRN and its successors (tbsrn, pcan, tpgsr, tatt) share.

Kept in the official formulation (``x * tanh(softplus(x))``; the GRU over contiguous row
sequences), so that every model built on them keeps its bit-level parity with the official
code; TSRN adds its fast CPU path on top (``tzbench_tsrn.tsrn.GruBlock.forward_fast``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Mish", "RowBiGRU", "mish"]


def mish(x: Tensor) -> Tensor:
    """mish(x) = x * tanh(softplus(x)), the reference formulation (softplus threshold 20)."""
    return x * torch.tanh(F.softplus(x))


class Mish(nn.Module):
    """:func:`mish` as a module without parameters (the official models name it ``prelu``)."""

    def forward(self, x: Tensor) -> Tensor:
        return mish(x)


class RowBiGRU(nn.Module):
    """TSRN's GRU block: 1x1 conv (bias) + bidirectional GRU (hidden C_out/2) over every row of
    a (B, C, H, W) map; the state-dict keys are the official ``conv1.*`` and ``gru.*``."""

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if out_channels % 2:
            raise ValueError(f"the GRU block needs an even output width, got {out_channels}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=1, padding=0)
        self.gru = nn.GRU(out_channels, out_channels // 2, bidirectional=True, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        """Reference path: sequences are the rows of ``x`` (length W, batch B*H)."""
        x = self.conv1(x)
        x = x.permute(0, 2, 3, 1).contiguous()
        b, h, w, c = x.shape
        x, _ = self.gru(x.view(b * h, w, c))
        return x.view(b, h, w, c).permute(0, 3, 1, 2).contiguous()
