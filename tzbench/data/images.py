"""Image primitives shared by every dataset: decoding, TextZoom resizing, the mask channel.

The exact pixel values matter (results are compared with the official code), so every step
follows the official ``resizeNormalize`` to the bit:

* images are decoded with Pillow and converted to RGB;
* HR is resized to 128x32 and LR to 64x16 with Pillow's bicubic filter;
* the optional mask is computed on the *resized* RGB image: Pillow's ``convert('L')``
  (integer ITU-R 601 weights), threshold = the float mean of that gray image, pixel -> 0
  when gray > threshold, else 255 (dark text on light ground becomes 255);
* float tensors are ``uint8 / 255`` in float32 (what ``ToTensor`` does).

Everything is kept as uint8 until :func:`collate`, so caches stay four times smaller than
float storage and the conversion is done once per batch.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "HR_SIZE",
    "LR_SIZE",
    "decode_image",
    "resize_bicubic",
    "gray_l",
    "mask_from_rgb",
    "mask_channel",
    "to_chw",
    "image_format",
    "collate",
    "to_float01",
]

HR_SIZE: tuple[int, int] = (128, 32)
"""(width, height) of HR images, Pillow's order."""
LR_SIZE: tuple[int, int] = (64, 16)
"""(width, height) of LR images, Pillow's order."""

# Pillow's RGB -> L conversion: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
_L_WEIGHTS = (19595, 38470, 7471)


def decode_image(data: bytes) -> Image.Image:
    """Decode PNG/JPEG/... bytes to an RGB Pillow image (fully loaded, so errors raise here)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.convert("RGB")


def resize_bicubic(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` = (width, height) with Pillow's bicubic filter (the official one)."""
    return img.resize(size, Image.BICUBIC)


def gray_l(rgb: np.ndarray) -> np.ndarray:
    """Pillow's ``convert('L')`` of an (H, W, 3) uint8 array, bit-exact, as uint8 (H, W)."""
    x = rgb.astype(np.uint32)
    w0, w1, w2 = _L_WEIGHTS
    return ((x[..., 0] * w0 + x[..., 1] * w1 + x[..., 2] * w2 + 0x8000) >> 16).astype(np.uint8)


def mask_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """The official binary mask of an already resized (H, W, 3) uint8 image: (H, W) uint8 0/255."""
    gray = gray_l(rgb)
    # numpy's mean of uint8 accumulates in float64, like the official np.array(mask).mean().
    threshold = float(gray.mean())
    return np.where(gray > threshold, 0, 255).astype(np.uint8)


def mask_channel(images: torch.Tensor) -> torch.Tensor:
    """Mask channel of uint8 RGB tensors ``(..., 3, H, W)`` -> uint8 ``(..., 1, H, W)`` (0/255).

    Same rule as :func:`mask_from_rgb` (bit-exact), computed per image, batched on the
    tensor's device. Float inputs in [0, 1] are accepted and rounded to uint8 first.
    """
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    if images.shape[-3] < 3:
        raise ValueError(f"mask_channel needs 3 RGB channels, got shape {tuple(images.shape)}")
    x = images[..., :3, :, :].to(torch.int64)
    gray = (x[..., 0, :, :] * _L_WEIGHTS[0] + x[..., 1, :, :] * _L_WEIGHTS[1]
            + x[..., 2, :, :] * _L_WEIGHTS[2] + 0x8000) >> 16
    # Integer sum divided once in float64: exactly numpy's float64 mean of the uint8 image.
    thr = gray.sum(dim=(-2, -1), keepdim=True).to(torch.float64) / (gray.shape[-1] * gray.shape[-2])
    mask = torch.where(gray.to(torch.float64) > thr, 0, 255).to(torch.uint8)
    return mask.unsqueeze(-3)


def to_chw(rgb: np.ndarray, mask: bool = False) -> torch.Tensor:
    """(H, W, 3) uint8 array -> uint8 tensor (3 or 4, H, W); channel 4 is the mask."""
    chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    if mask:
        chw = torch.cat([chw, torch.from_numpy(mask_from_rgb(rgb))[None]], dim=0)
    return chw


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"BM", "bmp"),
    (b"GIF8", "gif"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
)


def image_format(data: bytes) -> str:
    """File extension for image bytes from their magic number ('bin' when unknown)."""
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bin"


def to_float01(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], bit-identical to ``ToTensor`` (``x.float() / 255``).

    CPU data is converted with numpy: a single-threaded pass that never waits on OpenMP
    barriers, which matters when the cores are busy with the model (measured here on a
    shared 2-core machine: 20-50x slower with torch's 2-thread kernels than with 1 thread).
    """
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.divide(images, np.float32(255), dtype=np.float32))
    if images.device.type == "cpu" and images.dtype == torch.uint8:
        return torch.from_numpy(np.divide(images.numpy(), np.float32(255), dtype=np.float32))
    return images.float().div_(255)


def _stack01(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    if all(t.device.type == "cpu" and t.dtype == torch.uint8 for t in tensors):
        return to_float01(np.stack([t.numpy() for t in tensors]))
    return torch.stack(list(tensors)).float().div_(255)


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack dataset items into a batch.

    Returns ``{"lr": float32 (B,C,16,64), "hr": float32 (B,C,32,128), "label": list[str],
    "index": int64 (B,)}`` with images in [0, 1] (``uint8 / 255``, as ``ToTensor``).
    """
    if len(batch) == 0:
        raise ValueError("collate got an empty batch")
    return {
        "lr": _stack01([b["lr"] for b in batch]),
        "hr": _stack01([b["hr"] for b in batch]),
        "label": [b["label"] for b in batch],
        "index": torch.tensor([int(b["index"]) for b in batch], dtype=torch.int64),
    }
