"""``tatt_loss``: TATT's training objective (official ``interfaces/super_resolution.py``, the
``--use_distill --gradient --tssim_loss`` branch of ``train_TATT.sh``)::

    loss = scale * [ ImageLoss(sr, hr)                                  (tsrn_loss: MSE + 1e-4 GP)
                     + distill_weight * (mean|p_T(hr) - p| + KL(p_T(hr) || p))
                     + tssim_weight * (1 - TRI_SSIM(rotate(sr), sr_rot, rotate(hr))) ]

The first two terms are ``tpgsr_loss`` with one stage. The third is the rotation
structure-consistency term: ``sr_rot`` is the SR of the LR image rotated by the same random
angle (the model's training forward makes it), and TRI_SSIM is SSIM generalised to three images
(11x11 Gaussian window, sigma 1.5, every channel, C1 = 0.01^2, C2 = 0.03^2). The official loop
weighs the terms 100, 100 and 10: ``tssim_weight = 0.1`` with ``scale = 1`` keeps those ratios.
"""

from __future__ import annotations

from math import exp

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench_successors.tatt import RotationReadings, rotate_images
from tzbench_successors.tpgsr_loss import TPGSRLoss

__all__ = ["TATTLoss", "tri_ssim"]


def _window(size: int, channels: int, like: Tensor) -> Tensor:
    gauss = torch.tensor([exp(-((x - size // 2) ** 2) / (2 * 1.5**2)) for x in range(size)])
    g1 = (gauss / gauss.sum()).unsqueeze(1)
    return (g1 @ g1.t()).float().expand(channels, 1, size, size).contiguous().to(like)


def tri_ssim(a: Tensor, b: Tensor, c: Tensor, window_size: int = 11, size_average: bool = True) -> Tensor:
    """TATT's three-image SSIM (official ``TRI_SSIM``): the mean of
    ``(sum mu_i mu_j + C1)(sum sigma_ij + C2) / ((sum mu_i^2 + C1)(sum sigma_i^2 + C2))`` over
    the pairs (a, b), (b, c), (c, a); per sample (B,) when ``size_average`` is False."""
    channels = a.shape[1]
    win = _window(window_size, channels, a)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, win, padding=window_size // 2, groups=channels)

    mu = [blur(x) for x in (a, b, c)]
    var = [blur(x * x) - m * m for x, m in zip((a, b, c), mu, strict=True)]
    pairs = ((0, 1), (1, 2), (2, 0))
    imgs = (a, b, c)
    cov = [blur(imgs[i] * imgs[j]) - mu[i] * mu[j] for i, j in pairs]
    c1, c2 = 0.01**2, 0.03**2
    num = (sum(mu[i] * mu[j] for i, j in pairs) + c1) * (sum(cov) + c2)
    den = (sum(m * m for m in mu) + c1) * (sum(var) + c2)
    ssim_map = num / den
    return ssim_map.mean() if size_average else ssim_map.mean(1).mean(1).mean(1)


class TATTLoss(nn.Module):
    """TATT's loss; ``forward(sr, hr)`` -> scalar (module docstring). Parts: ``image``,
    ``distill`` (when ``distill``), ``tssim`` (when ``tssim_weight > 0``; unweighted), ``loss``.

    Args: as :class:`~tzbench_successors.tpgsr_loss.TPGSRLoss`, plus ``tssim_weight``.
    """

    def __init__(self, mse_weight: float = 1.0, gp_weight: float = 1e-4, distill: bool = True,
                 distill_weight: float = 1.0, teacher: str = "crnn_tz", teacher_weights: str | None = None,
                 tssim_weight: float = 0.1, scale: float = 1.0) -> None:
        super().__init__()
        self.base = TPGSRLoss(mse_weight, gp_weight, distill, distill_weight, teacher, teacher_weights, scale=1.0)
        self.teacher_info = self.base.teacher_info
        self.tssim_weight, self.scale = tssim_weight, scale
        self._parts: dict[str, Tensor] = {}

    @property
    def parts(self) -> dict[str, float]:
        """The named terms of the last call, as Python floats (empty before the first call)."""
        return {k: float(v) for k, v in self._parts.items()}

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        loss = self.base(sr, hr)
        terms = {k: v for k, v in self.base._parts.items() if k != "loss"}
        if self.tssim_weight > 0:
            rot: RotationReadings | None = getattr(sr, "tatt_rotation", None)
            if rot is None:
                raise ValueError("tatt_loss: tssim_weight > 0 needs the training output of the tatt model with "
                                 "rotate_train > 0 (it carries the rotated pass); use tssim_weight=0 otherwise")
            tssim = 1 - tri_ssim(rotate_images(sr, rot.arc, rot.rand_offs), rot.sr_rotated,
                                 rotate_images(hr, rot.arc, rot.rand_offs)).mean()
            terms["tssim"] = tssim.detach()
            loss = loss + self.tssim_weight * tssim
        loss = loss * self.scale
        self._parts = {**terms, "loss": loss.detach()}
        return loss
