"""Bicubic x2 upsampling: the parameter-free reference point of every TextZoom table."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Bicubic"]


class Bicubic(nn.Module):
    """Upsample x2 with bicubic interpolation (``align_corners=False``), clamped to ``[0, 1]``.

    Works for any channel count (RGB or RGB + mask). Bicubic overshoots near edges, hence the
    clamp: the result is a valid image in the range the data and the judges expect.
    """

    scale: int = 2

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)`` in ``[0, 1]``."""
        if x.dim() != 4:
            raise ValueError(f"bicubic expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        y = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y.clamp(0.0, 1.0)
