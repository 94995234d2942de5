"""Figures from the store: Fig. 2's accuracy bars and Fig. 5/6-style image grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from tzbench.report.tables import SUBSETS, ReportRow
from tzbench.text import str_filt

__all__ = ["accuracy_bars", "image_grid", "char_errors", "require_plotting"]


def require_plotting() -> None:
    """Fail with an install hint when matplotlib is missing (reproduce calls this before it
    trains, so a broken environment does not crash after hours of work)."""
    import importlib.util

    from tzbench.runner.context import RunError

    if importlib.util.find_spec("matplotlib") is None:
        raise RunError("report figures need matplotlib, a tzbench dependency missing from this environment: "
                       "reinstall tzbench (pip install -e .) or pip install 'matplotlib>=3.7,<4'")


def accuracy_bars(rows: list[ReportRow], judge: str, out: Path, title: str = "") -> Path:
    """Grouped bars: accuracy per subset (and average) for each model, one judge (Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    groups = [*SUBSETS, "all"]
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 4), 4))
    for i, r in enumerate(rows):
        vals = [r.accuracy.get(judge, {}).get(g, np.nan) * 100 for g in groups]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=r.label)
    ax.set_xticks(x, ["easy", "medium", "hard", "average"])
    ax.set_ylabel(f"word accuracy (%) — {judge}")
    ax.set_ylim(0, 100)
    ax.set_title(title or f"Recognition accuracy by subset ({judge})")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def char_errors(pred: str, label: str) -> list[bool]:
    """Per character of ``pred``: is it wrong? (alignment by edit distance, TextZoom's filter)."""
    p, g = str_filt(pred, "lower"), str_filt(label, "lower")
    n, m = len(p), len(g)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (p[i - 1] != g[j - 1]))
    wrong = [True] * n
    i, j = n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (p[i - 1] != g[j - 1]):
            wrong[i - 1] = p[i - 1] != g[j - 1]
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return wrong


def _font(size: int = 12) -> Any:
    try:
        return ImageFont.truetype("DejaVuSansMono.ttf", size)
    except OSError:
        return ImageFont.load_default()


def _to_pil(img: torch.Tensor) -> Image.Image:
    arr = (img[:3].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def image_grid(
    columns: list[tuple[str, torch.Tensor]],
    readings: dict[str, dict[str, list[str]]],
    labels: list[str],
    out: Path,
    scale: int = 2,
) -> Path:
    """Rows = samples; columns = (name, images (N,C,H,W) in [0,1]) e.g. LR, each SR, HR.

    Under each image, each judge's reading; wrong characters in red, right ones in green.
    """
    font = _font(11)
    cell_w, cell_h = 128 * scale, 32 * scale
    judges = sorted({j for col in readings.values() for j in col})
    text_h = 14 * max(1, len(judges))
    pad = 6
    head = 18
    n = len(labels)
    W = pad + len(columns) * (cell_w + pad)
    H = head + n * (cell_h + text_h + pad) + pad
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (name, _) in enumerate(columns):
        draw.text((pad + c * (cell_w + pad), 2), name, fill="black", font=font)
    for r in range(n):
        y = head + r * (cell_h + text_h + pad)
        for c, (name, imgs) in enumerate(columns):
            x = pad + c * (cell_w + pad)
            tile = _to_pil(imgs[r]).resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (x, y))
            for k, judge in enumerate(judges):
                pred = readings.get(name, {}).get(judge)
                if pred is None:
                    continue
                text = str_filt(pred[r], "lower")
                ty = y + cell_h + 1 + 14 * k
                tx = x
                draw.text((tx, ty), f"{judge}:", fill="gray", font=font)
                tx += int(draw.textlength(f"{judge}:", font=font)) + 2
                for ch, bad in zip(text, char_errors(pred[r], labels[r])):
                    draw.text((tx, ty), ch, fill=(200, 0, 0) if bad else (0, 140, 0), font=font)
                    tx += int(draw.textlength(ch, font=font))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
