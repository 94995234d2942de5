"""Synthetic TextZoom-like pairs: rendered words, camera-like degradation.

Each sample is a pure function of ``(seed, split, subset, index)`` (and the installed
fonts, Pillow and libjpeg): the generator seeds a numpy ``Generator`` with those numbers,
picks a string, a font, colours, a background and a small geometric distortion, renders a
tight word crop at about twice the HR resolution, resizes it to 128x32 with Pillow bicubic
(the HR, exactly as TextZoom resizes its crops) and degrades that to the 64x16 LR with
:mod:`tzbench.data.degrade` at the subset's strength (easy/medium/hard thirds; the training
split mixes all strengths).

Strings come from a built-in list of common English and sign words (``words.txt``) in
lower, Title and UPPER case, plus generated numbers, prices, times, codes and contractions.
The test split draws words from a held-out fifth of the list (chosen by a stable hash), so
a recognizer trained on synthetic training data is not tested on memorised words.
"""

from __future__ import annotations

import hashlib
import string
import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tzbench.data.dataset import RawPair
from tzbench.data.degrade import degrade, level_strength, sample_degradation
from tzbench.data.errors import BadSample
from tzbench.data.fonts import select_fonts
from tzbench.data.images import HR_SIZE, resize_bicubic
from tzbench.text import str_filt

__all__ = [
    "GENERATOR_VERSION",
    "SPLIT_CODES",
    "SUBSET_CODES",
    "word_list",
    "word_pool",
    "SynthSource",
    "render_text",
    "synth_pair",
]

GENERATOR_VERSION = 2
"""Bumped whenever the same seed would produce different pixels (invalidates disk caches)."""

SPLIT_CODES = {"train": 1, "test": 2}
SUBSET_CODES = {None: 0, "easy": 1, "medium": 2, "hard": 3}


@lru_cache(maxsize=1)
def word_list() -> tuple[str, ...]:
    """The built-in words (unique, in file order)."""
    text = resources.files("tzbench.data").joinpath("words.txt").read_text(encoding="utf-8")
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        for w in line.split():
            seen.setdefault(w.lower(), None)
    return tuple(seen)


@lru_cache(maxsize=2)
def word_pool(split: str) -> tuple[str, ...]:
    """Words of ``split``: the test split holds a stable fifth of the list, train the rest."""
    test = tuple(w for w in word_list() if hashlib.sha1(w.encode()).digest()[0] % 5 == 0)
    if split == "test":
        return test
    held = set(test)
    return tuple(w for w in word_list() if w not in held)


def _generated_string(rng: np.random.Generator) -> str:
    kind = int(rng.integers(0, 8))
    digits = string.digits
    if kind == 0:
        return str(int(rng.integers(0, 10 ** int(rng.integers(1, 6)))))
    if kind == 1:
        return f"${int(rng.integers(1, 500))}.{int(rng.integers(0, 100)):02d}"
    if kind == 2:
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.choice([0, 15, 30, 45])):02d}"
    if kind == 3:
        return str(int(rng.integers(1950, 2031)))
    if kind == 4:
        n = int(rng.integers(3, 7))
        pool = string.ascii_uppercase + digits
        return "".join(pool[int(i)] for i in rng.integers(0, len(pool), n))
    if kind == 5:
        return f"{int(rng.integers(100, 1000))}-{int(rng.integers(0, 10000)):04d}"
    if kind == 6:
        return f"{int(rng.integers(5, 95))}%"
    return "".join(digits[int(i)] for i in rng.integers(0, 10, int(rng.integers(2, 5)))) + str(
        rng.choice(["st", "nd", "th", "km", "kg", "ml", "am", "pm"])
    )


def _pick_text(rng: np.random.Generator, pool: Sequence[str]) -> str:
    r = rng.uniform()
    if r < 0.16:
        return _generated_string(rng)
    word = pool[int(rng.integers(0, len(pool)))]
    if r < 0.19:
        word = word + str(rng.choice(["'s", "!", ".", ",", "-", "?"]))
    case = rng.uniform()
    if case < 0.35:
        return word.lower()
    if case < 0.65:
        return word[:1].upper() + word[1:]
    return word.upper()


_tls = threading.local()


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # FreeType faces are not safe to share between threads: one cache per thread.
    cache = getattr(_tls, "fonts", None)
    if cache is None:
        cache = _tls.fonts = {}
    key = (path, size)
    font = cache.get(key)
    if font is None:
        font = ImageFont.truetype(path, size) if path else ImageFont.load_default(size)
        cache[key] = font
    return font


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _hsv(rng: np.random.Generator, sat_pow: float) -> np.ndarray:
    # Saturation skewed low: scene colours are mostly muted, a few are vivid.
    h, s, v = rng.uniform(), rng.uniform() ** sat_pow * 0.9, rng.uniform(0.08, 1.0)
    rgb = Image.new("HSV", (1, 1), (int(h * 255), int(s * 255), int(v * 255))).convert("RGB").getpixel((0, 0))
    return np.asarray(rgb, dtype=np.int64)


def _colors(rng: np.random.Generator, min_contrast: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Background and text colours at least ``min_contrast`` apart in luminance."""
    for _ in range(50):
        bg = _hsv(rng, 1.8)
        if rng.uniform() < 0.5:  # many signs use near black/white text
            fg = np.clip(np.full(3, 255 if _luma(bg) < 128 else 0) + rng.integers(-30, 31, 3), 0, 255)
        else:
            fg = _hsv(rng, 1.0)
        if abs(_luma(bg) - _luma(fg)) >= min_contrast:
            return tuple(int(v) for v in bg), tuple(int(v) for v in fg)
    return (235, 235, 235), (20, 20, 20)


def _background(size: tuple[int, int], bg: tuple[int, ...], rng: np.random.Generator) -> Image.Image:
    w, h = size
    kind = rng.uniform()
    base = np.empty((h, w, 3), np.float32)
    base[:] = np.asarray(bg, np.float32)
    if kind < 0.35:  # linear gradient
        amp = rng.uniform(-50, 50, 3).astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)[..., None]
        base += ramp * amp
    elif kind < 0.65:  # low-frequency texture (stains, paper, wall)
        lw, lh = max(2, w // 24), max(2, h // 12)
        low = rng.normal(0, rng.uniform(6, 22), (lh, lw, 3)).astype(np.float32)
        tex = np.stack([np.asarray(Image.fromarray(low[..., k], "F").resize((w, h), Image.BICUBIC))
                        for k in range(3)], axis=-1)
        base += tex
    base += rng.normal(0, rng.uniform(0, 4), (h, w, 1)).astype(np.float32)  # grain
    return Image.fromarray(np.clip(np.rint(base), 0, 255).astype(np.uint8), "RGB")


def _clutter(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
             text_box: tuple[int, int, int, int], frame: tuple[int, int, int], rng: np.random.Generator) -> None:
    """Things real word crops catch: cut-off letters of neighbouring lines, borders, rules."""
    ox, oy, tw, th = text_box
    m, w, h = frame
    r = rng.uniform()
    if r < 0.2:
        # Part of the line above or below, cut by the crop edge.
        other = "".join(string.ascii_letters[int(i)] for i in rng.integers(0, 52, 12))
        gap = float(rng.uniform(0.05, 0.3)) * th
        dy = -(th + gap) if rng.uniform() < 0.5 else th + gap
        draw.text((ox - int(rng.uniform(0, tw / 2)), oy + int(dy)), other, font=font, fill=255)
    elif r < 0.32:
        # A border or rule line near one edge.
        width = int(rng.integers(1, 4))
        if rng.uniform() < 0.5:
            y = m + (int(rng.integers(0, 3)) if rng.uniform() < 0.5 else h - 1 - int(rng.integers(0, 3)))
            draw.line([(m, y), (m + w, y)], fill=255, width=width)
        else:
            x = m + (int(rng.integers(0, 3)) if rng.uniform() < 0.5 else w - 1 - int(rng.integers(0, 3)))
            draw.line([(x, m), (x, m + h)], fill=255, width=width)


def _shading(canvas: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Uneven light over text and background alike: a gradient, soft shadows, a highlight."""
    w, h = canvas.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    gain = 1 + float(rng.uniform(-0.35, 0.35)) * (np.cos(ang) * (xx / w - 0.5) + np.sin(ang) * (yy / h - 0.5)) * 2
    low = rng.normal(0, rng.uniform(0.03, 0.15), (3, 5)).astype(np.float32)
    gain = gain * (1 + np.asarray(Image.fromarray(low, "F").resize((w, h), Image.BICUBIC)))
    img = np.asarray(canvas, np.float32) * gain[..., None]
    if rng.uniform() < 0.15:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rad = rng.uniform(0.15, 0.5) * w
        img += float(rng.uniform(40, 140)) * np.exp(-((xx - cx) ** 2 + ((yy - cy) * 2) ** 2) / (2 * rad**2))[..., None]
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def render_text(text: str, font_path: str | None, rng: np.random.Generator) -> Image.Image:
    """A tight word crop (RGB, about 40 px high) of ``text``; layout drawn from ``rng``."""
    size = int(rng.integers(30, 44))
    font = _font(font_path, size)
    stroke = int(rng.integers(1, 3)) if rng.uniform() < 0.15 else 0
    bg, fg = _colors(rng, float(rng.uniform(45, 100)))
    x0, y0, x1, y1 = font.getbbox(text, stroke_width=stroke)
    tw, th = max(1, x1 - x0), max(1, y1 - y0)
    ref = size * 0.75  # nominal glyph height, so padding does not depend on ascenders
    pad_x = int(rng.uniform(-0.05, 0.35) * ref)  # < 0: the box clips the end letters, as detectors do
    pad_top = int(rng.uniform(0.03, 0.3) * ref)
    pad_bot = int(rng.uniform(0.03, 0.3) * ref)
    # Very short words would be stretched absurdly by the 4:1 resize; widen some crops.
    min_w = int((th + pad_top + pad_bot) * rng.uniform(1.0, 2.0))
    w = max(tw + 2 * pad_x, min_w)
    h = th + pad_top + pad_bot
    # Text alpha layer on a margin so that shearing/rotation is not clipped.
    m = size // 2
    alpha = Image.new("L", (w + 2 * m, h + 2 * m), 0)
    ox, oy = m + (w - tw) // 2 - x0, m + pad_top - y0
    draw = ImageDraw.Draw(alpha)
    draw.text((ox, oy), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    _clutter(draw, font, (ox, oy, tw, th), (m, w, h), rng)
    shadow = None
    if rng.uniform() < 0.15:
        d = int(rng.integers(1, 4))
        shadow = Image.new("L", alpha.size, 0)
        ImageDraw.Draw(shadow).text((ox + d, oy + d), text, font=font, fill=255, stroke_width=stroke)
    shear = float(rng.uniform(-0.25, 0.25)) if rng.uniform() < 0.35 else 0.0
    angle = float(rng.uniform(-4, 4)) if rng.uniform() < 0.5 else 0.0
    # One affine (output -> input pixel map): rotation about the centre, then shear, then the
    # crop offset, so each layer is resampled once.
    cx, cy = alpha.size[0] / 2, alpha.size[1] / 2
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    centre = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    uncentre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    shear_m = np.array([[1, shear, -shear * cy], [0, 1, 0], [0, 0, 1]])
    crop = np.array([[1, 0, m], [0, 1, m], [0, 0, 1]])
    mat = shear_m @ centre @ rot @ uncentre @ crop
    coeffs = tuple(float(v) for v in mat[:2].ravel())
    identity = not shear and not angle

    def warp(layer: Image.Image) -> Image.Image:
        if identity:
            return layer.crop((m, m, m + w, m + h))
        return layer.transform((w, h), Image.AFFINE, coeffs, Image.BICUBIC)

    alpha = warp(alpha)
    canvas = _background((w, h), bg, rng)
    if shadow is not None:
        dark = tuple(int(v * 0.35) for v in bg)
        canvas.paste(Image.new("RGB", (w, h), dark), (0, 0), warp(shadow).point(lambda v: v * 7 // 10))
    fg_img = Image.new("RGB", (w, h), fg)
    if stroke and rng.uniform() < 0.7:
        # Outlined text: draw the stroke in a third colour, then the fill inside it.
        inner = Image.new("L", (w + 2 * m, h + 2 * m), 0)
        ImageDraw.Draw(inner).text((ox, oy), text, font=font, fill=255)
        outline = tuple(int(v) for v in rng.integers(0, 256, 3))
        canvas.paste(Image.new("RGB", (w, h), outline), (0, 0), alpha)
        canvas.paste(fg_img, (0, 0), warp(inner))
    else:
        canvas.paste(fg_img, (0, 0), alpha)
    if rng.uniform() < 0.6:
        canvas = _shading(canvas, rng)
    # Real HR crops are photographs, never perfectly sharp.
    soft = float(rng.uniform(0.0, 0.8))
    if soft > 0.15:
        canvas = canvas.filter(ImageFilter.GaussianBlur(soft))
    return canvas


def synth_pair(
    seed: int, split: str, subset: str | None, index: int, fonts: Sequence[str | None],
) -> tuple[np.ndarray, np.ndarray, str]:
    """The sample ``(hr (32,128,3), lr (16,64,3), text)`` for these coordinates (deterministic)."""
    rng = np.random.default_rng([int(seed), SPLIT_CODES[split], SUBSET_CODES[subset], int(index)])
    text = _pick_text(rng, word_pool(split))
    font = fonts[int(rng.integers(0, len(fonts)))]
    scene = render_text(text, font, rng)
    hr = np.asarray(resize_bicubic(scene, HR_SIZE), dtype=np.uint8)
    level = subset if split == "test" else None
    params = sample_degradation(level_strength(level, rng), rng, profile="render")
    lr = degrade(hr, params, rng)
    return hr, lr, text


class SynthSource:
    """A :class:`~tzbench.data.dataset.PairSource` of synthetic pairs.

    Args:
        split: 'train' (mixed strengths) or 'test' (strength from ``subset``).
        subset: easy, medium or hard for test; None for train.
        ids: the sample indices to produce (e.g. a carved validation part of train).
        seed: generator seed.
        fonts: font files/globs (see :func:`tzbench.data.fonts.select_fonts`); None = all.
    """

    def __init__(
        self, split: str, subset: str | None, ids: Sequence[int], seed: int = 0,
        fonts: Sequence[str] | None = None,
    ) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"synthetic split must be 'train' or 'test', got {split!r}")
        if split == "test" and subset not in ("easy", "medium", "hard"):
            raise ValueError(f"synthetic test subset must be easy, medium or hard, got {subset!r}")
        if split == "train" and subset is not None:
            raise ValueError("the synthetic train split has no subsets (it mixes all levels)")
        self.split, self.subset, self.seed = split, subset, int(seed)
        self.ids = [int(i) for i in ids]
        found = select_fonts(fonts)
        self.fonts: list[str | None] = list(found) if found else [None]
        self.description = f"synth {split}/{subset or 'mixed'} seed={seed} ({len(self.ids)} samples)"

    def __len__(self) -> int:
        return len(self.ids)

    def problems(self) -> list[BadSample]:
        """Generated data has no source-level problems."""
        return []

    def fingerprint(self) -> str:
        """Generator version, coordinates, fonts and library versions."""
        import PIL

        ids = hashlib.sha256(np.asarray(self.ids, np.int64).tobytes()).hexdigest()
        return (f"synth|v{GENERATOR_VERSION}|{self.seed}|{self.split}|{self.subset}|{ids}|"
                f"{'|'.join(str(f) for f in self.fonts)}|pillow={PIL.__version__}|numpy={np.__version__}")

    def produce(self, i: int) -> RawPair:
        """Render sample ``i`` of this source."""
        hr, lr, text = synth_pair(self.seed, self.split, self.subset, self.ids[i], self.fonts)
        return RawPair(hr, lr, str_filt(text, "all"), text, f"{self.split}/{self.subset or 'mixed'}/{self.ids[i]}")
