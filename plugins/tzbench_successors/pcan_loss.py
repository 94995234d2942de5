"""``pcan_loss``: PCAN's training loss, the official ``ImageLoss(gradient, edge, [1, 1e-4, 1e-4])``.

    loss = scale * (mse_weight * MSE(sr, hr)                          (all channels, mask too)
                    + gp_weight * L1(G(sr[:, :3]), G(hr[:, :3]))      if gradient (TextZoom's prior)
                    + eg_weight * L1(E(sr[:, :3]), E(hr[:, :3])))     if edge (edge guidance)

G is TextZoom's gradient map ``sqrt(((r - l)/2)^2 + ((t - b)/2)^2 + 1e-6)`` per channel, with
zeros outside the image. E is the edge map of the edge-guidance loss:
``sqrt((Sy/2)^2 + (Sx/2)^2 + 1e-6)`` with ``Sx``, ``Sy`` the 3x3 Sobel responses (zero
padding). The official code convolves the RGB image with the Sobel kernel expanded to
(3, 3, 3, 3), so each of its three output channels is the response of R + G + B; the map is
computed once here on that channel sum, which gives the same mean.

The official README trains with ``--STN --mask --edge`` and without ``--gradient``, so the
defaults are ``edge=True, gradient=False``: MSE + 1e-4 x edge guidance. ``gradient=True`` adds
TextZoom's gradient prior (the three-term form the constructor also offers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PCANLoss", "gradient_prior_map", "edge_map"]

_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def gradient_prior_map(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-channel ``sqrt(((r - l)/2)^2 + ((t - b)/2)^2 + eps)``, neighbours zero outside."""
    p = F.pad(x, (1, 1, 1, 1))
    dx = p[..., 1:-1, 2:] - p[..., 1:-1, :-2]
    dy = p[..., 2:, 1:-1] - p[..., :-2, 1:-1]
    return torch.sqrt((dx * 0.5).pow(2) + (dy * 0.5).pow(2) + eps)


def edge_map(x: Tensor, eps: float = 1e-6) -> Tensor:
    """(B, 1, H, W) Sobel magnitude ``sqrt((Sy/2)^2 + (Sx/2)^2 + eps)`` of the channel sum of ``x``."""
    kx = torch.tensor(_SOBEL_X, dtype=x.dtype, device=x.device)
    kernels = torch.stack([kx.t(), kx])[:, None]  # (2, 1, 3, 3): Sy, Sx
    s = F.conv2d(x.sum(1, keepdim=True), kernels, padding=1)
    return torch.sqrt((s * 0.5).pow(2).sum(1, keepdim=True) + eps)


class PCANLoss(nn.Module):
    """PCAN's image loss; ``forward(sr, hr)`` -> scalar (see the module docstring).

    Parts (unweighted): ``mse``, ``gp`` (when ``gradient``), ``eg`` (when ``edge``), and
    ``loss`` (the returned value).

    Args:
        mse_weight: weight of the MSE (official 1).
        gradient: add TextZoom's gradient prior on RGB (official flag ``--gradient``; off in
            the official training command).
        gp_weight: its weight (official 1e-4).
        edge: add the edge-guidance term on RGB (official ``--edge``; on in the command).
        eg_weight: its weight (official 1e-4).
        scale: multiplies the total. The official loop optimises ``loss * 100``; the official
            ``ImageLoss`` itself returns the unscaled value, hence the default 1 (the recipe's
            ``loss_scale`` does the rest).
    """

    def __init__(self, mse_weight: float = 1.0, gradient: bool = False, gp_weight: float = 1e-4, edge: bool = True,
                 eg_weight: float = 1e-4, scale: float = 1.0) -> None:
        super().__init__()
        self.mse_weight, self.gp_weight, self.eg_weight, self.scale = mse_weight, gp_weight, eg_weight, scale
        self.gradient, self.edge = gradient, edge
        self._parts: dict[str, Tensor] = {}

    @property
    def parts(self) -> dict[str, float]:
        """The named terms of the last call, as Python floats (empty before the first call)."""
        return {k: float(v) for k, v in self._parts.items()}

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        if sr.dim() != 4 or sr.shape != hr.shape or sr.shape[1] < 3:
            raise ValueError(f"pcan_loss expects two (B, C, H, W) tensors of the same shape with C >= 3, got "
                             f"{tuple(sr.shape)} and {tuple(hr.shape)}")
        mse = F.mse_loss(sr, hr)
        terms = {"mse": mse}
        loss = self.mse_weight * mse
        if self.gradient:
            terms["gp"] = F.l1_loss(gradient_prior_map(sr[:, :3]), gradient_prior_map(hr[:, :3]))
            loss = loss + self.gp_weight * terms["gp"]
        if self.edge:
            terms["eg"] = F.l1_loss(edge_map(sr[:, :3]), edge_map(hr[:, :3]))
            loss = loss + self.eg_weight * terms["eg"]
        loss = loss * self.scale
        self._parts = {k: v.detach() for k, v in {**terms, "loss": loss}.items()}
        return loss
