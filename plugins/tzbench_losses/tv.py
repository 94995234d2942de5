"""``tv``: total variation of the SR image, a smoothness prior."""

from __future__ import annotations

from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair

__all__ = ["TVLoss", "total_variation"]


def total_variation(x: Tensor, power: int = 2) -> Tensor:
    """Anisotropic TV: mean over vertical plus mean over horizontal neighbour differences.

    ``power=2`` squares the differences, ``power=1`` takes their absolute value.
    """
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    if power == 2:
        return dh.pow(2).mean() + dw.pow(2).mean()
    return dh.abs().mean() + dw.abs().mean()


class TVLoss(PartsLoss):
    """Total variation of ``sr`` (``hr`` only checks the shape); parts: ``tv``."""

    def __init__(self, power: int = 2) -> None:
        super().__init__()
        if power not in (1, 2):
            raise ValueError(f"power must be 1 or 2, got {power}")
        self.power = power

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        loss = total_variation(sr, self.power)
        self._record(tv=loss)
        return loss
