"""Figures from the store: Fig. 2's accuracy bars and Fig. 5/6-style image grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from tzbench.report.tables import SUBSETS, ReportRow, reference_baseline
from tzbench.text import str_filt

__all__ = ["accuracy_bars", "image_grid", "char_errors", "word_diff", "DIFF_COLOURS", "require_plotting"]


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
    base_name = reference_baseline()
    base = next((r for r in rows if r.model == base_name), None)
    for i, r in enumerate(rows):
        vals = [r.accuracy.get(judge, {}).get(g, np.nan) * 100 for g in groups]
        xs = x + (i - (len(rows) - 1) / 2) * width
        # A 0% bar gets a visible stub (and its label) so it never looks like missing data.
        bars = ax.bar(xs, [max(v, 0.4) if np.isfinite(v) else np.nan for v in vals], width, label=r.label)
        ax.bar_label(bars, labels=[f"{v:.1f}" if np.isfinite(v) else "n/a" for v in vals], fontsize=6, padding=1)
    if base is not None:  # the reference every SR model has to beat, per group
        for gx, g in zip(x, groups):
            v = base.accuracy.get(judge, {}).get(g)
            if v is not None:
                ax.hlines(v * 100, gx - 0.42, gx + 0.42, colors="black", linestyles="dashed", linewidth=1,
                          label=base_name if g == groups[0] else None)
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


#: Colours of :func:`word_diff`'s segment kinds in the grids.
DIFF_COLOURS = {"ok": (0, 140, 0), "wrong": (200, 0, 0), "missing": (230, 120, 0)}


def word_diff(pred: str, label: str) -> list[tuple[str, str]]:
    """``pred`` against ``label`` (TextZoom's filter) as ``(text, kind)`` segments.

    ``kind``: ``ok`` (read right), ``wrong`` (a predicted character that replaces or adds to
    the label's) or ``missing`` (label characters the reading lacks, shown as the label's own
    characters so a deletion is visible: "srictly" for *strictly* shows a missing "t").
    The alignment is difflib's opcodes on the filtered strings.
    """
    import difflib

    p, g = str_filt(pred, "lower"), str_filt(label, "lower")
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, p, g, autojunk=False).get_opcodes():
        if op == "equal":
            out.append((p[i1:i2], "ok"))
        elif op == "insert":
            out.append((g[j1:j2], "missing"))
        elif op == "delete":
            out.append((p[i1:i2], "wrong"))
        else:  # replace: the wrong characters, then what the label had there when it had more
            out.append((p[i1:i2], "wrong"))
            if j2 - j1 > i2 - i1:
                out.append((g[j1 + (i2 - i1):j2], "missing"))
    return out


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
    """Rows = samples; columns = (name, images (N,C,H,W) in [0,1]) e.g. bicubic, each SR, HR.

    Each row starts with the true label; under each image, each judge's reading after a
    whole-word mark (green square: the word is right, red: wrong), with right characters in
    green, wrong ones in red and missing ones (deletions) in orange (:func:`word_diff`).
    """
    font = _font(11)
    cell_w, cell_h = 128 * scale, 32 * scale
    judges = sorted({j for col in readings.values() for j in col})
    line = 14
    text_h = line * max(1, len(judges))
    pad = 6
    head = 18
    n = len(labels)
    W = pad + len(columns) * (cell_w + pad)
    H = head + n * (line + cell_h + text_h + pad) + pad
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (name, _) in enumerate(columns):
        draw.text((pad + c * (cell_w + pad), 2), name, fill="black", font=font)
    for r in range(n):
        y = head + r * (line + cell_h + text_h + pad)
        draw.text((pad, y), f"label: {labels[r]}", fill="black", font=font)
        y += line
        for c, (name, imgs) in enumerate(columns):
            x = pad + c * (cell_w + pad)
            tile = _to_pil(imgs[r]).resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (x, y))
            for k, judge in enumerate(judges):
                pred = readings.get(name, {}).get(judge)
                if pred is not None:
                    _draw_reading(draw, font, x, y + cell_h + 1 + line * k, judge, pred[r], labels[r])
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out


def _draw_reading(draw: Any, font: Any, x: int, y: int, judge: str, pred: str, label: str) -> None:
    right = str_filt(pred, "lower") == str_filt(label, "lower")
    draw.rectangle((x, y + 2, x + 8, y + 10), fill=DIFF_COLOURS["ok" if right else "wrong"])
    x += 11
    draw.text((x, y), f"{judge}:", fill="gray", font=font)
    x += int(draw.textlength(f"{judge}:", font=font)) + 2
    segments = word_diff(pred, label) or [("(empty)", "wrong")]
    for text, kind in segments:
        draw.text((x, y), text, fill=DIFF_COLOURS[kind], font=font)
        width = int(draw.textlength(text, font=font))
        if kind == "missing":  # underlined: letters the reading does not have
            draw.line((x, y + 12, x + width, y + 12), fill=DIFF_COLOURS[kind])
        x += width
