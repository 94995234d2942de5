"""Converters between image folders and TextZoom LMDBs, inspection, synthetic LMDBs.

* :func:`make_lmdb`: images + ``labels.tsv`` -> LMDB. Image bytes are stored unchanged.
  With ``lr_dir`` the LR files are taken from there (same relative names); without it the
  LR is made from each HR: ``lr_from='bicubic'`` (bicubic x2 of the 128x32 HR) or
  ``'easy'|'medium'|'hard'`` (the camera-like degradation, deterministic per sample).
* :func:`export_lmdb`: LMDB -> ``hr/``, ``lr/`` and ``labels.tsv``, raw bytes preserved, so
  images -> LMDB -> images is byte-identical (file names too: the LMDB keeps them under
  ``name-%09d``; LMDBs without names export as ``000000001.png`` ...).
* :func:`inspect_lmdb`: decodes every sample and reports counts, sizes, formats, label
  charset and bad samples by key; optionally writes a contact sheet PNG.
* :func:`write_synth_lmdb`: a synthetic LMDB (PNG HR + PNG LR) at one level.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tzbench.data.degrade import degrade, level_strength, sample_degradation
from tzbench.data.errors import BadSample, DatasetError
from tzbench.data.folder import escape_label, read_labels_tsv
from tzbench.data.fonts import select_fonts
from tzbench.data.images import HR_SIZE, LR_SIZE, decode_image, image_format, resize_bicubic
from tzbench.data.splits import hash_fraction
from tzbench.data.synth import synth_pair
from tzbench.data.textzoom_lmdb import (
    NUM_SAMPLES_KEY,
    LmdbReader,
    LmdbWriter,
    hr_key,
    label_key,
    lr_key,
    name_key,
)

__all__ = [
    "make_lmdb",
    "export_lmdb",
    "ExportReport",
    "inspect_lmdb",
    "InspectReport",
    "write_synth_lmdb",
    "contact_sheet",
]


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _resolve_image(rel: str, bases: Sequence[Path]) -> Path | None:
    for base in bases:
        p = base / rel
        if p.is_file():
            return p
    return None


def make_lmdb(
    images_dir: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    out: str | os.PathLike[str],
    lr_dir: str | os.PathLike[str] | None = None,
    lr_from: str = "medium",
    seed: int = 0,
) -> int:
    """Write an LMDB from a folder of images and a ``labels.tsv``; returns the sample count.

    Image paths in ``labels`` are looked up under ``images_dir``, then next to the label
    file. LR files (``lr_dir``) are looked up by the same relative path, then by file name.

    Raises:
        DatasetError: for a listed image that does not exist, or an HR that cannot be
            decoded when the LR has to be made from it (nothing is written then).
    """
    images_dir, labels_path, out_path = Path(images_dir), Path(labels), Path(out)
    if lr_dir is None and lr_from != "bicubic" and lr_from not in ("easy", "medium", "hard"):
        raise ValueError(f"lr_from must be 'bicubic', 'easy', 'medium' or 'hard', got {lr_from!r}")
    rows = read_labels_tsv(labels_path)
    bases = [images_dir, labels_path.parent]
    plan: list[tuple[str, Path, Path | None, str]] = []
    for row in rows:
        hr = _resolve_image(row.path, bases)
        if hr is None:
            raise DatasetError(f"{labels_path}:{row.line}: image {row.path!r} not found under {images_dir} "
                               f"or {labels_path.parent}")
        lr = None
        if lr_dir is not None:
            lr = _resolve_image(row.path, [Path(lr_dir)]) or _resolve_image(Path(row.path).name, [Path(lr_dir)])
            if lr is None:
                raise DatasetError(f"{labels_path}:{row.line}: no LR image for {row.path!r} in {lr_dir}")
        plan.append((row.path, hr, lr, row.label))
    with LmdbWriter(out_path) as w:
        for rel, hr, lr, label in plan:
            hr_bytes = hr.read_bytes()
            if lr is not None:
                lr_bytes = lr.read_bytes()
            else:
                try:
                    hr_img = resize_bicubic(decode_image(hr_bytes), HR_SIZE)
                except Exception as exc:
                    raise DatasetError(f"{hr}: undecodable image ({exc}); cannot make its LR") from None
                if lr_from == "bicubic":
                    lr_rgb = np.asarray(resize_bicubic(hr_img, LR_SIZE), dtype=np.uint8)
                else:
                    key_code = int(hash_fraction(rel, seed) * 2**62)
                    rng = np.random.default_rng([int(seed), key_code])
                    params = sample_degradation(level_strength(lr_from, rng), rng)
                    lr_rgb = degrade(np.asarray(hr_img, dtype=np.uint8), params, rng)
                lr_bytes = _png(lr_rgb)
            w.add(hr_bytes, lr_bytes, label, name=rel)
        return w.count


def _safe_name(name: str) -> str | None:
    """``name`` as a safe relative POSIX path, or None (absolute, '..', empty, odd characters)."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or not p.parts or any(part in ("..", ".", "") for part in p.parts):
        return None
    if any(ord(ch) < 32 for ch in name):
        return None
    return str(p)


@dataclass
class ExportReport:
    """What :func:`export_lmdb` wrote."""

    out_dir: str
    count: int = 0
    bad_samples: list[BadSample] = field(default_factory=list)


def export_lmdb(lmdb_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> ExportReport:
    """Export an LMDB to ``out_dir/hr/``, ``out_dir/lr/`` and ``out_dir/labels.tsv`` (raw bytes).

    ``labels.tsv`` lists paths relative to ``out_dir/hr`` so that
    ``make_lmdb(out/hr, out/labels.tsv, new, lr_dir=out/lr)`` rebuilds the same LMDB.
    Samples with a missing HR or label are reported (not exported); a missing LR only
    skips the LR file.
    """
    reader = LmdbReader(lmdb_dir)
    out = Path(out_dir)
    (out / "hr").mkdir(parents=True, exist_ok=True)
    report = ExportReport(str(out))
    n = reader.num_samples()
    lines = []
    used: set[str] = set()
    for i in range(1, n + 1):
        hr, lr, label, name = reader.get_many([hr_key(i), lr_key(i), label_key(i), name_key(i)])
        if hr is None or label is None:
            key = hr_key(i) if hr is None else label_key(i)
            report.bad_samples.append(BadSample(key, str(reader.path), "missing key", "missing_key"))
            continue
        rel = _safe_name(name.decode("utf-8", "replace")) if name is not None else None
        if rel is None or rel in used:
            rel = f"{i:09d}.{image_format(hr)}"
        used.add(rel)
        for sub, data in (("hr", hr), ("lr", lr)):
            if data is None:
                continue
            dest = out / sub / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        lines.append(f"{rel}\t{escape_label(label.decode('utf-8', 'replace'))}\n")
        report.count += 1
    (out / "labels.tsv").write_text("".join(lines), encoding="utf-8")
    reader.close()
    return report


@dataclass
class InspectReport:
    """Result of :func:`inspect_lmdb`."""

    path: str
    num_samples: int
    """The ``num-samples`` value."""
    label_keys: int
    """How many ``label-*`` keys the LMDB holds."""
    ok: int = 0
    """Samples whose HR, LR and label all decode."""
    bad_samples: list[BadSample] = field(default_factory=list)
    hr_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    lr_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    charset: Counter[str] = field(default_factory=Counter)
    label_lengths: Counter[int] = field(default_factory=Counter)
    sheet: str | None = None

    def height_histogram(self, which: str = "hr", edges: Sequence[int] = (0, 8, 16, 24, 32, 48, 64, 128)) -> dict[str, int]:
        """Image heights binned by ``edges`` (last bin open)."""
        sizes = self.hr_sizes if which == "hr" else self.lr_sizes
        hist: dict[str, int] = {}
        for lo, hi in zip(list(edges), list(edges[1:]) + [None]):
            label = f"{lo}-{hi - 1}" if hi is not None else f">={lo}"
            hist[label] = sum(c for (w, h), c in sizes.items() if h >= lo and (hi is None or h < hi))
        return hist

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "path": self.path,
            "num_samples": self.num_samples,
            "label_keys": self.label_keys,
            "ok": self.ok,
            "bad_samples": [{"key": b.key, "path": b.path, "reason": b.reason, "kind": b.kind} for b in self.bad_samples],
            "hr_height_histogram": self.height_histogram("hr"),
            "lr_height_histogram": self.height_histogram("lr"),
            "hr_sizes_top": [[list(s), c] for s, c in self.hr_sizes.most_common(10)],
            "lr_sizes_top": [[list(s), c] for s, c in self.lr_sizes.most_common(10)],
            "formats": dict(self.formats),
            "charset": "".join(sorted(self.charset)),
            "label_lengths": {str(k): v for k, v in sorted(self.label_lengths.items())},
            "sheet": self.sheet,
        }

    def summary(self) -> str:
        """A short human-readable report."""
        lines = [
            f"{self.path}: num-samples {self.num_samples}, label keys {self.label_keys}, "
            f"decodable {self.ok}, bad {len(self.bad_samples)}",
            f"  formats: {dict(self.formats)}",
            f"  HR heights: {self.height_histogram('hr')}",
            f"  LR heights: {self.height_histogram('lr')}",
            f"  most common HR sizes: {self.hr_sizes.most_common(3)}",
            f"  label charset ({len(self.charset)}): {''.join(sorted(self.charset))!r}",
        ]
        if self.label_lengths:
            ls = sorted(self.label_lengths.elements())
            lines.append(f"  label length: min {ls[0]}, median {ls[len(ls) // 2]}, max {ls[-1]}")
        for b in self.bad_samples[:20]:
            lines.append(f"  BAD {b.key}: {b.reason}")
        if len(self.bad_samples) > 20:
            lines.append(f"  ... and {len(self.bad_samples) - 20} more bad samples")
        if self.sheet:
            lines.append(f"  contact sheet: {self.sheet}")
        return "\n".join(lines)


def inspect_lmdb(
    lmdb_dir: str | os.PathLike[str], sheet: str | os.PathLike[str] | None = None, n: int = 64,
) -> InspectReport:
    """Decode every sample of an LMDB and report on it; ``sheet``: write a contact sheet of ``n`` pairs."""
    reader = LmdbReader(lmdb_dir)
    path = str(reader.path)
    num = reader.num_samples()
    report = InspectReport(path, num, reader.count_prefix("label-"))
    if report.label_keys != num:
        report.bad_samples.append(BadSample(
            NUM_SAMPLES_KEY, path, f"count mismatch: num-samples is {num} but {report.label_keys} label-* keys exist",
            "count_mismatch"))
    picks = set(np.linspace(1, num, min(n, num)).round().astype(int).tolist()) if sheet and num else set()
    tiles: list[tuple[np.ndarray, np.ndarray, str]] = []
    for i in range(1, num + 1):
        hr, lr, label = reader.get_many([hr_key(i), lr_key(i), label_key(i)])
        missing = [k for k, v in ((hr_key(i), hr), (lr_key(i), lr), (label_key(i), label)) if v is None]
        if missing:
            report.bad_samples.append(BadSample(missing[0], path, f"missing key(s): {', '.join(missing)}", "missing_key"))
            continue
        assert hr is not None and lr is not None and label is not None
        try:  # strict, as the dataset reads it: inspect must not pass what eval refuses
            text = label.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.bad_samples.append(BadSample(label_key(i), path, f"label is not UTF-8: {exc}", "undecodable"))
            continue
        if text == "":
            report.bad_samples.append(BadSample(label_key(i), path, "empty label", "empty_label"))
            continue
        imgs = []
        failed = False
        for key, data, sizes in ((hr_key(i), hr, report.hr_sizes), (lr_key(i), lr, report.lr_sizes)):
            try:
                img = decode_image(data)
            except Exception as exc:
                report.bad_samples.append(BadSample(key, path, f"undecodable image: {exc}", "undecodable"))
                failed = True
                break
            sizes[img.size] += 1
            report.formats[image_format(data)] += 1
            imgs.append(img)
        if failed:
            continue
        report.ok += 1
        report.charset.update(text)
        report.label_lengths[len(text)] += 1
        if i in picks:
            tiles.append((np.asarray(resize_bicubic(imgs[0], HR_SIZE)), np.asarray(resize_bicubic(imgs[1], LR_SIZE)), text))
    reader.close()
    if sheet:
        contact_sheet(tiles).save(sheet)
        report.sheet = str(sheet)
    return report


def contact_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], cols: int = 4, zoom: int = 2) -> Image.Image:
    """A grid of ``(hr, lr, label)`` tiles: HR, then LR bicubic-upsampled to HR size, label below."""
    tw, th = HR_SIZE[0] * zoom * 2 + 4, HR_SIZE[1] * zoom + 14
    cols = max(1, min(cols, len(pairs) or 1))
    rows = max(1, (len(pairs) + cols - 1) // cols)
    sheet = Image.new("RGB", (cols * (tw + 8), rows * (th + 4)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    size = (HR_SIZE[0] * zoom, HR_SIZE[1] * zoom)
    for k, (hr, lr, label) in enumerate(pairs):
        r, c = divmod(k, cols)
        x, y = c * (tw + 8), r * (th + 4)
        sheet.paste(Image.fromarray(hr[..., :3]).resize(size, Image.NEAREST), (x, y))
        sheet.paste(Image.fromarray(lr[..., :3]).resize(size, Image.BICUBIC), (x + size[0] + 4, y))
        draw.text((x + 2, y + size[1]), label[:40], fill=(255, 230, 0), font=font)
    return sheet


def write_synth_lmdb(
    out: str | os.PathLike[str], n: int, subset: str | None = "hard", seed: int = 0,
    fonts: Sequence[str] | None = None,
) -> int:
    """Write ``n`` synthetic pairs (PNG HR 128x32, PNG LR 64x16) at ``subset``'s level.

    ``subset`` None (or 'mixed') draws training-like mixed strengths from the train word
    pool; a level draws from the held-out test words. Returns the count written.
    """
    if subset == "mixed":
        subset = None
    found = select_fonts(fonts)
    font_list: list[str | None] = list(found) if found else [None]
    split = "train" if subset is None else "test"
    with LmdbWriter(out) as w:
        for i in range(n):
            hr, lr, text = synth_pair(seed, split, subset, i, font_list)
            w.add(_png(hr), _png(lr), text)
        return w.count
