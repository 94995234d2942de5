"""``srresnet_loss``: SRResNet's loss in TextZoom, L2 + TV + perceptual."""

from __future__ import annotations

from torch import Tensor

from tzbench_losses.base import PartsLoss, check_pair
from tzbench_losses.l2 import mse
from tzbench_losses.perceptual import PerceptualLoss
from tzbench_losses.tv import total_variation

__all__ = ["SRResNetLoss"]


class SRResNetLoss(PartsLoss):
    """``mse_weight*MSE + tv_weight*TV(sr) + perceptual_weight*VGG(relu5_4) distance``.

    TextZoom trains SRResNet with L2, TV and perceptual losses without stating weights; the
    defaults follow SRGAN (Ledig et al., 2017). With ``perceptual_weight > 0`` the VGG19
    weights must be present, otherwise construction raises a WeightsError that names the file
    to provide. ``perceptual_weight=0`` builds no VGG and trains offline; such a run is not the
    paper's loss and its recipe should say so.

    Parts: ``mse``, ``tv`` and (when enabled) ``perceptual``, unweighted.
    """

    def __init__(self, mse_weight: float = 1.0, tv_weight: float = 2e-8, perceptual_weight: float = 6e-3,
                 vgg_weights: str | None = None, vgg_layer: str = "relu5_4") -> None:
        super().__init__()
        self.mse_weight = mse_weight
        self.tv_weight = tv_weight
        self.perceptual_weight = perceptual_weight
        self.perceptual = (
            PerceptualLoss(weights=vgg_weights, layer=vgg_layer) if perceptual_weight > 0 else None
        )

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        check_pair(sr, hr)
        mse_term = mse(sr, hr)
        tv_term = total_variation(sr, power=2)
        loss = self.mse_weight * mse_term + self.tv_weight * tv_term
        terms = {"mse": mse_term, "tv": tv_term}
        if self.perceptual is not None:
            p_term = self.perceptual(sr, hr)
            loss = loss + self.perceptual_weight * p_term
            terms["perceptual"] = p_term
        self._record(**terms)
        return loss
