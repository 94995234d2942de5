"""Camera-like degradation that makes a 64x16 LR image from a 128x32 HR image.

TextZoom's LR images come from a shorter focal length, not from bicubic down-sampling: they
are blurred by optics, mis-registered by a fraction of a pixel, noisy and compressed. A plain
bicubic x2 is far too easy (a strong recognizer loses under 1 point on it), so tzbench's
synthetic and ``wild`` pairs use this model instead, applied in this order:

1. misalignment: sub-pixel shift and slight scale (bilinear resampling, edges replicated);
2. optical blur at HR resolution: Gaussian, or a defocus disk;
3. x2 down-sampling by 2x2 averaging (sensor pixels integrate light over their area);
4. contrast loss (haze) and an exposure (gamma) change;
5. sensor noise: luminance plus chroma Gaussian noise;
6. JPEG compression (4:2:0 chroma sub-sampling).

One *strength* ``t`` in [0, 1] drives every parameter (each also jittered); the subsets
``easy``/``medium``/``hard`` draw ``t`` from the thirds of [0, 1], training draws it
uniformly. Everything is numpy (no threaded reductions) and seeded by the caller's
generator, so a sample is bit-identical whatever the thread count.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

__all__ = ["LEVELS", "PROFILES", "Degradation", "DegradationProfile", "sample_degradation", "degrade", "level_strength"]

LEVELS: dict[str, tuple[float, float]] = {
    "easy": (0.0, 1 / 3),
    "medium": (1 / 3, 2 / 3),
    "hard": (2 / 3, 1.0),
}
"""Strength interval of each difficulty level."""


def level_strength(level: str | None, rng: np.random.Generator) -> float:
    """A strength for ``level`` (uniform in its third), or uniform in [0, 1] for None (mixed)."""
    if level is None:
        return float(rng.uniform(0.0, 1.0))
    try:
        lo, hi = LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown level {level!r}; expected one of {list(LEVELS)} or None") from None
    return float(rng.uniform(lo, hi))


@dataclass(frozen=True)
class Degradation:
    """Parameters of one degradation (units: LR pixels unless stated)."""

    strength: float
    blur: str
    """'gaussian' or 'defocus'."""
    blur_sigma: float
    """Gaussian sigma, or the disk radius for defocus, in HR pixels."""
    shift_x: float
    shift_y: float
    scale: float
    contrast: float
    """Fraction of contrast kept (1 = unchanged)."""
    gamma: float
    noise: float
    """Noise standard deviation in 0..255 units."""
    jpeg_quality: int

    def as_dict(self) -> dict[str, float | str | int]:
        """Plain dict (for reports)."""
        return asdict(self)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


@dataclass(frozen=True)
class DegradationProfile:
    """Ranges of each parameter, as (value at strength 0, value at strength 1).

    Two profiles exist because content matters as much as optics: clean rendered words stay
    readable under a blur that wipes out a real, already soft photo crop. Each profile is
    calibrated so that the three levels cost a strong recognizer comparable accuracy (see
    docs/data.md for the measured figures).
    """

    blur_sigma: tuple[float, float]
    """Gaussian sigma in HR pixels (defocus disks use twice this radius)."""
    shift: tuple[float, float]
    """Maximum misalignment, LR pixels."""
    scale: tuple[float, float]
    """Maximum relative scale error."""
    contrast_loss: tuple[float, float]
    """Maximum fraction of contrast lost."""
    gamma: tuple[float, float]
    """Maximum |log gamma|."""
    noise: tuple[float, float]
    """Noise standard deviation, 0..255 units."""
    jpeg_quality: tuple[float, float]


PROFILES: dict[str, DegradationProfile] = {
    # Real crops (the `wild` dataset, make_lmdb's made LR).
    "photo": DegradationProfile(
        blur_sigma=(0.5, 2.2), shift=(0.1, 0.5), scale=(0.01, 0.04), contrast_loss=(0.0, 0.45),
        gamma=(0.05, 0.25), noise=(1.0, 9.0), jpeg_quality=(90, 30),
    ),
    # Rendered words (the `synth` dataset): cleaner content needs stronger optics.
    "render": DegradationProfile(
        blur_sigma=(2.4, 3.3), shift=(0.2, 0.6), scale=(0.01, 0.05), contrast_loss=(0.1, 0.5),
        gamma=(0.05, 0.3), noise=(2.0, 12.0), jpeg_quality=(80, 20),
    ),
}


def sample_degradation(strength: float, rng: np.random.Generator, profile: str = "photo") -> Degradation:
    """Draw degradation parameters for ``strength`` in [0, 1] (jittered around the nominal)."""
    try:
        p = PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown degradation profile {profile!r}; expected one of {list(PROFILES)}") from None
    t = float(np.clip(strength, 0.0, 1.0))
    jitter = lambda: float(rng.uniform(0.8, 1.2))  # noqa: E731
    defocus = bool(rng.uniform() < 0.3)
    sigma = _lerp(*p.blur_sigma, t) * jitter()
    shift = _lerp(*p.shift, t)
    return Degradation(
        strength=t,
        blur="defocus" if defocus else "gaussian",
        # A disk of radius r has a standard deviation r/2; match the Gaussian's spread.
        blur_sigma=sigma * 2.0 if defocus else sigma,
        shift_x=float(rng.uniform(-shift, shift)),
        shift_y=float(rng.uniform(-shift, shift)),
        scale=1.0 + float(rng.uniform(-1, 1)) * _lerp(*p.scale, t),
        contrast=1.0 - _lerp(*p.contrast_loss, t) * float(rng.uniform(0.3, 1.0)),
        gamma=float(np.exp(rng.uniform(-1, 1) * _lerp(*p.gamma, t))),
        noise=_lerp(*p.noise, t) * jitter(),
        jpeg_quality=int(np.clip(round(_lerp(*p.jpeg_quality, t) + rng.uniform(-6, 6)), 10, 95)),
    )


def _shift_scale(img: np.ndarray, dx: float, dy: float, scale: float) -> np.ndarray:
    """Resample (C,H,W) float image about its centre: out(x) = in((x - c)/scale + c - d)."""
    _, h, w = img.shape
    ys = (np.arange(h, dtype=np.float64) - (h - 1) / 2) / scale + (h - 1) / 2 - dy
    xs = (np.arange(w, dtype=np.float64) - (w - 1) / 2) / scale + (w - 1) / 2 - dx
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)[None, :, None]
    wx = (xs - x0).astype(np.float32)[None, None, :]
    top = img[:, y0][:, :, x0] * (1 - wx) + img[:, y0][:, :, x1] * wx
    bot = img[:, y1][:, :, x0] * (1 - wx) + img[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bot * wy


def _convolve_taps(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation of (C,H,W) with a small kernel, edges replicated (a sum of shifted copies)."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    _, h, w = img.shape
    pad = np.pad(img, ((0, 0), (ph, ph), (pw, pw)), mode="edge")
    out = np.zeros_like(img)
    for i in range(kh):
        for j in range(kw):
            k = kernel[i, j]
            if k != 0.0:
                out += k * pad[:, i:i + h, j:j + w]
    return out


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0.05:
        return img
    r = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    # Separable: rows then columns.
    img = _convolve_taps(img, k[None, :])
    return _convolve_taps(img, k[:, None])


def _defocus_blur(img: np.ndarray, radius: float) -> np.ndarray:
    if radius <= 0.1:
        return img
    r = int(np.ceil(radius))
    # Anti-aliased disk: the fraction of each tap inside the circle, by 4x4 super-sampling.
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    yy = y[..., None, None] + sub[:, None]
    xx = x[..., None, None] + sub[None, :]
    k = ((yy ** 2 + xx ** 2) <= radius ** 2).mean(axis=(-1, -2))
    k = (k / k.sum()).astype(np.float32)
    return _convolve_taps(img, k)


def degrade(hr: np.ndarray, params: Degradation, rng: np.random.Generator) -> np.ndarray:
    """LR (16, 64, 3) uint8 from HR (32, 128, 3) uint8 under ``params`` (noise drawn from ``rng``)."""
    if hr.shape != (32, 128, 3) or hr.dtype != np.uint8:
        raise ValueError(f"degrade expects a (32, 128, 3) uint8 HR image, got {hr.shape} {hr.dtype}")
    img = hr.transpose(2, 0, 1).astype(np.float32)
    # Shifts are given in LR pixels; this stage runs at HR resolution (x2).
    img = _shift_scale(img, 2 * params.shift_x, 2 * params.shift_y, params.scale)
    if params.blur == "defocus":
        img = _defocus_blur(img, params.blur_sigma)
    else:
        img = _gaussian_blur(img, params.blur_sigma)
    c, h, w = img.shape
    img = img.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4), dtype=np.float32)
    mean = img.mean(dtype=np.float64)
    img = (img - np.float32(mean)) * np.float32(params.contrast) + np.float32(mean)
    img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** np.float32(params.gamma)
    noise = rng.standard_normal((1, h // 2, w // 2)).astype(np.float32) * 0.8
    noise = noise + rng.standard_normal((3, h // 2, w // 2)).astype(np.float32) * 0.6
    img = img + noise * np.float32(params.noise)
    lr = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(lr), "RGB").save(buf, format="JPEG", quality=params.jpeg_quality)
    buf.seek(0)
    with Image.open(buf) as jpg:
        return np.asarray(jpg.convert("RGB"), dtype=np.uint8).copy()
