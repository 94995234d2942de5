"""``l1``: mean absolute error over every pixel and channel."""

from __future__ import annotations

from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair

__all__ = ["L1Loss"]


class L1Loss(PartsLoss):
    """``mean(|sr - hr|)``; parts: ``l1``."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        loss = (sr - hr).abs().mean()
        self._record(l1=loss)
        return loss
