"""``tsrn_loss``: TSRN's training loss, TextZoom's ``ImageLoss(gradient=True, [1, 1e-4])``."""

from __future__ import annotations

from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair
from tzbench_losses.gradient_profile import gradient_map
from tzbench_losses.l2 import mse

__all__ = ["TSRNLoss"]


class TSRNLoss(PartsLoss):
    """``scale * (mse_weight * MSE(sr, hr) + gp_weight * GP(sr[:, :3], hr[:, :3]))``.

    The MSE covers every channel (the predicted mask too); the gradient prior only RGB.
    Parts: ``mse`` and ``gp`` (unweighted) and ``loss`` (the returned value).

    Args:
        mse_weight: weight of the MSE term (official 1).
        gp_weight: weight of the gradient-prior term (official 1e-4).
        scale: multiplies the total. TextZoom's loop optimises ``loss * 100``; the official
            ``ImageLoss`` itself returns the unscaled value, hence the default 1.
    """

    def __init__(self, mse_weight: float = 1.0, gp_weight: float = 1e-4, scale: float = 1.0) -> None:
        super().__init__()
        self.mse_weight = mse_weight
        self.gp_weight = gp_weight
        self.scale = scale

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        mse_term = mse(sr, hr)
        gp_term = (gradient_map(sr[:, :3]) - gradient_map(hr[:, :3])).abs().mean()
        loss = (self.mse_weight * mse_term + self.gp_weight * gp_term) * self.scale
        self._record(mse=mse_term, gp=gp_term, loss=loss)
        return loss
