"""Clean rendered word crops: a fixed, font-rendered check that a judge can read at all.

Used by the judge contract test and the judge benchmark; not training data (see ``synth``
for realistic generated pairs).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CLEAN_WORDS", "render_clean_words"]

#: 32 everyday words, mixed case and with digits.
CLEAN_WORDS: tuple[str, ...] = (
    "coffee", "Street", "OPEN", "market", "hotel", "2019", "Parking", "EXIT", "station", "school",
    "garden", "Bank", "pizza", "music", "Office", "SALE", "river", "house", "STOP", "bakery",
    "centre", "London", "road", "123", "library", "Welcome", "taxi", "north", "PHONE", "museum",
    "summer", "shop",
)


def _font(size: int) -> ImageFont.FreeTypeFont:
    from tzbench.data.fonts import find_fonts

    fonts = sorted(find_fonts(), key=lambda p: (not str(p).endswith("DejaVuSans.ttf"), str(p)))
    if not fonts:
        raise RuntimeError("no TrueType font found to render words (DejaVu is expected: apt-get install fonts-dejavu)")
    return ImageFont.truetype(str(fonts[0]), size)


def render_clean_words(words: list[str] | tuple[str, ...], size: tuple[int, int] = (32, 128)) -> torch.Tensor:
    """Dark text on a light ground, cropped with a margin, bicubic to ``size`` = (H, W).

    Returns ``(B, 3, H, W)`` float images in ``[0, 1]``, deterministic for a given font.
    """
    font = _font(40)
    out = []
    for w in words:
        x0, y0, x1, y1 = font.getbbox(w)
        pad = 8
        img = Image.new("RGB", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), (235, 235, 230))
        ImageDraw.Draw(img).text((pad - x0, pad - y0), w, font=font, fill=(20, 20, 30))
        img = img.resize((size[1], size[0]), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
    return torch.stack(out).float() / 255
