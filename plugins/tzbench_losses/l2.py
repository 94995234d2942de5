"""``l2``: mean squared error over every pixel and channel (the mask channel included)."""

from __future__ import annotations

from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair

__all__ = ["L2Loss", "mse"]


def mse(sr: Tensor, hr: Tensor) -> Tensor:
    """``mean((sr - hr)^2)``."""
    return (sr - hr).pow(2).mean()


class L2Loss(PartsLoss):
    """``mean((sr - hr)^2)``; parts: ``mse``."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        loss = mse(sr, hr)
        self._record(mse=loss)
        return loss
