"""``gradient_profile``: TextZoom's gradient prior (GP) loss, which sharpens stroke edges."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair

__all__ = ["gradient_map", "GradientProfileLoss"]


def gradient_map(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-channel gradient magnitude ``sqrt(((r-l)/2)^2 + ((t-b)/2)^2 + eps)``.

    ``r``, ``l``, ``t``, ``b`` are the right, left, top and bottom neighbours, with zeros
    outside the image (so border pixels see a step to 0, as in TextZoom).
    """
    p = F.pad(x, (1, 1, 1, 1))
    r = p[..., 1:-1, 2:]
    left = p[..., 1:-1, :-2]
    t = p[..., :-2, 1:-1]
    b = p[..., 2:, 1:-1]
    return torch.sqrt(((r - left) * 0.5).pow(2) + ((t - b) * 0.5).pow(2) + eps)


class GradientProfileLoss(PartsLoss):
    """``mean(|gradient_map(sr) - gradient_map(hr)|)``; parts: ``gp``.

    Args:
        eps: added under the square root so the gradient stays finite on flat regions.
        channels: ``'rgb'`` compares channels ``[:3]`` only (TSRN's choice: the binary mask
            has no text-profile meaning); ``'all'`` every channel.
    """

    def __init__(self, eps: float = 1e-6, channels: str = "rgb") -> None:
        super().__init__()
        if channels not in ("rgb", "all"):
            raise ValueError(f"channels must be 'rgb' or 'all', got {channels!r}")
        self.eps = eps
        self.channels = channels

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        if self.channels == "rgb":
            sr, hr = sr[:, :3], hr[:, :3]
        loss = (gradient_map(sr, self.eps) - gradient_map(hr, self.eps)).abs().mean()
        self._record(gp=loss)
        return loss
