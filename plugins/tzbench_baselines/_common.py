"""Small pieces shared by the baseline models: input checks and the optional TPS-STN.

The STN classes live in the TSRN plugin (``tzbench_tsrn.alignment``); they are imported only
when a model is built with ``stn=True``, so the plain baselines never depend on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["check_input", "build_stn", "rectify"]


def check_input(x: torch.Tensor, channels: int, model: str) -> None:
    """Raise a clear error unless ``x`` is a float ``(B, channels, H, W)`` batch."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{model} expects a (B, {channels}, H, W) batch, got shape {tuple(x.shape)}"
        )


def build_stn(in_planes: int, output_size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
    """Return ``(tps, stn_head)`` configured as in TextZoom (20 points, margins 0.05)."""
    from tzbench_tsrn.alignment import STNHead, TPSSpatialTransformer

    tps = TPSSpatialTransformer(
        output_image_size=output_size, num_control_points=20, margins=(0.05, 0.05)
    )
    stn_head = STNHead(in_planes=in_planes)
    return tps, stn_head


def rectify(x: torch.Tensor, tps: nn.Module, stn_head: nn.Module) -> torch.Tensor:
    """Warp ``x`` with the STN the way TSRN does: resize to 32x64, predict points, sample.

    The official baselines fed the raw 16x64 LR image to the head, whose five 2x2 poolings
    then reach zero height and crash; TSRN's resize is the working variant of the same idea.
    The output has the TPS output size (the HR size for SRCNN/VDSR, the LR size otherwise).
    """
    from tzbench_tsrn.alignment import STN_INPUT_SIZE

    x = F.interpolate(x, STN_INPUT_SIZE, mode="bilinear", align_corners=True)
    _, ctrl = stn_head(x)
    rectified, _ = tps(x, ctrl)
    return rectified
