"""``charbonnier``: the robust L1 of LapSRN (Lai et al., CVPR 2017)."""

from __future__ import annotations

from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair

__all__ = ["CharbonnierLoss"]


class CharbonnierLoss(PartsLoss):
    """``mean(sqrt((sr - hr)^2 + eps^2))``; parts: ``charbonnier``.

    Behaves like L1 away from zero but stays differentiable at zero.
    """

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        loss = ((sr - hr).pow(2) + self.eps**2).sqrt().mean()
        self._record(charbonnier=loss)
        return loss
