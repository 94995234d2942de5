"""Image transforms of recognizer training: the bicubic LR view and the seeded jitter of a batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bicubic_up", "augment_batch"]


def bicubic_up(lr: Tensor, size: tuple[int, int] = (32, 128)) -> Tensor:
    """LR ``(B, C, h, w)`` in ``[0, 1]`` upsampled bicubically to ``size``, clamped to ``[0, 1]``."""
    return F.interpolate(lr, size, mode="bicubic", align_corners=False).clamp_(0, 1)


def augment_batch(images: Tensor, generator: torch.Generator) -> Tensor:
    """Light, label-preserving jitter of ``(B, 3, H, W)`` images in ``[0, 1]``.

    Per image: a small affine warp (rotation within +-3 degrees, shear +-0.15, scale 0.9-1.05,
    shift +-4% horizontally / +-8% vertically, border replicated), contrast and brightness
    jitter, random channel order, and for a quarter of the images a 3x3 blur; Gaussian noise
    on top. Random numbers come from ``generator`` (on the CPU), so a seeded run repeats.
    """
    b = images.shape[0]

    def u(lo: float, hi: float, n: int = b) -> Tensor:
        return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(images.device)

    ang = u(-3, 3) * math.pi / 180
    shear, scale = u(-0.15, 0.15), u(0.9, 1.05)
    tx, ty = u(-0.04, 0.04), u(-0.08, 0.08)
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    perm = torch.stack([torch.randperm(3, generator=generator) for _ in range(b)]).to(images.device)
    out = out.gather(1, perm[:, :, None, None].expand(-1, -1, *out.shape[2:]))
    blur = (torch.rand(b, generator=generator) < 0.25).to(images.device)
    if bool(blur.any()):
        k = torch.tensor([1.0, 2.0, 1.0], device=images.device, dtype=images.dtype)
        k2 = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
        blurred = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
        out = torch.where(blur[:, None, None, None], blurred, out)
    mean = out.mean((1, 2, 3), keepdim=True)
    contrast, bright = u(0.6, 1.2)[:, None, None, None], u(-0.1, 0.1)[:, None, None, None]
    out = (out - mean) * contrast + mean + bright
    noise = torch.randn(out.shape, generator=generator).to(images.device) * u(0, 0.03)[:, None, None, None]
    return (out + noise).clamp_(0, 1)
