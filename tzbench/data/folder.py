"""Folders of word crops with ``labels.tsv``, and the ``wild`` pair source built on them.

``labels.tsv`` format (UTF-8): one ``<relative image path>\\t<label>`` per line, paths
relative to the folder holding the file. The label is everything after the first tab.
Backslash escapes in labels: ``\\\\`` (backslash), ``\\"`` (quote, as ICDAR writes it),
``\\t``, ``\\n`` and ``\\r``; any other backslash is literal. Blank lines are ignored.
A label ``###`` marks an unreadable word (ICDAR convention): it is skipped and counted.

``wild`` pairs: HR = the crop resized to 128x32 (Pillow bicubic, as TextZoom resizes its
crops), LR = :func:`tzbench.data.degrade.degrade` of that HR at a strength drawn per sample
from ``(seed, key, level)``; the crops are real text, the LR is made.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tzbench.data.dataset import RawPair
from tzbench.data.degrade import degrade, level_strength, sample_degradation
from tzbench.data.errors import BadSample, DatasetError, SampleError
from tzbench.data.images import HR_SIZE, decode_image, resize_bicubic
from tzbench.data.splits import hash_fraction
from tzbench.data.textzoom_lmdb import LmdbReader, hr_key, is_lmdb_dir, label_key
from tzbench.text import str_filt

__all__ = [
    "IGNORE_LABEL",
    "LabelRow",
    "parse_label_line",
    "escape_label",
    "read_labels_tsv",
    "CropRef",
    "list_crops",
    "WildSource",
]

IGNORE_LABEL = "###"

_ESCAPES = {"\\": "\\", '"': '"', "t": "\t", "n": "\n", "r": "\r"}
_ESC_RE = re.compile(r"\\(.)", re.DOTALL)


def _unescape(s: str) -> str:
    return _ESC_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), s)


def escape_label(label: str) -> str:
    """Escape a label for ``labels.tsv`` (inverse of the reader's unescaping)."""
    return label.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@dataclass(frozen=True)
class LabelRow:
    """One ``labels.tsv`` line."""

    path: str
    label: str
    line: int


def parse_label_line(line: str, lineno: int, source: str) -> LabelRow | None:
    """Parse one line; None for a blank line. Raises DatasetError for a line without a tab."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    path, sep, label = line.partition("\t")
    if not sep:
        raise DatasetError(f"{source}:{lineno}: expected '<image path>\\t<label>', got {line[:80]!r}")
    return LabelRow(path.strip(), _unescape(label), lineno)


def read_labels_tsv(path: str | os.PathLike[str]) -> list[LabelRow]:
    """All rows of a ``labels.tsv`` file."""
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            row = parse_label_line(line, n, str(path))
            if row is not None:
                rows.append(row)
    return rows


@dataclass(frozen=True)
class CropRef:
    """Where one crop lives: a file in a folder, or an HR image in an LMDB."""

    root: str
    """The folder (or LMDB) it belongs to."""
    name: str
    """Relative image path (folder) or 1-based index as text (LMDB)."""
    label: str
    """Raw label."""

    @property
    def key(self) -> str:
        """Stable identity used for split assignment and reports: ``<root name>/<name>``."""
        return f"{Path(self.root).name}/{self.name}"


def _expand_roots(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for r in roots:
        p = Path(r).expanduser()
        if (p / "labels.tsv").is_file() or is_lmdb_dir(p):
            out.append(p)
            continue
        if p.is_dir():
            # A collection folder (like shared/data/wild-train): every child dataset, sorted.
            children = sorted(c for c in p.iterdir() if c.is_dir() and ((c / "labels.tsv").is_file() or is_lmdb_dir(c)))
            if children:
                out.extend(children)
                continue
        raise DatasetError(
            f"wild data folder {p} holds no labels.tsv, no LMDB (data.mdb) and no sub-folder with "
            "either; expected <folder>/labels.tsv with <folder>/<image path> files"
        )
    return out


def list_crops(roots: Sequence[str | os.PathLike[str]]) -> list[CropRef]:
    """Every labelled crop under ``roots`` (folders with labels.tsv, LMDBs, or parents of those)."""
    crops: list[CropRef] = []
    for root in _expand_roots(roots):
        if (root / "labels.tsv").is_file():
            crops.extend(CropRef(str(root), row.path, row.label) for row in read_labels_tsv(root / "labels.tsv"))
        else:
            reader = LmdbReader(root)
            n = reader.num_samples()
            labels = reader.get_many([label_key(i) for i in range(1, n + 1)])
            for i, lab in enumerate(labels, 1):
                crops.append(CropRef(str(root), str(i), lab.decode("utf-8", "replace") if lab is not None else ""))
            reader.close()
    return crops


class WildSource:
    """Real crops with made LR: a :class:`~tzbench.data.dataset.PairSource`.

    Args:
        crops: the crops to produce, in order.
        level: easy/medium/hard, or None for mixed strengths (training).
        seed: degradation seed.
    """

    def __init__(self, crops: Sequence[CropRef], level: str | None, seed: int = 0, description: str = "real crops") -> None:
        self.crops = list(crops)
        self.level, self.seed = level, int(seed)
        self.description = f"{description} ({len(self.crops)} crops, level {level or 'mixed'})"
        self._readers: dict[str, LmdbReader] = {}

    def __len__(self) -> int:
        return len(self.crops)

    def problems(self) -> list[BadSample]:
        """No source-level checks (each crop is checked on its own)."""
        return []

    def fingerprint(self) -> str:
        """Crop list (with file sizes and mtimes), level and seed."""
        import hashlib

        h = hashlib.sha256()
        for c in self.crops:
            p = Path(c.root) / c.name
            st = p.stat() if p.is_file() else None
            h.update(f"{c.root}|{c.name}|{c.label}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
        for root in sorted({c.root for c in self.crops}):
            if is_lmdb_dir(root):
                h.update(LmdbReader(root).stat_fingerprint().encode())
        return f"wild|v1|{self.level}|{self.seed}|{h.hexdigest()}"

    def _read_bytes(self, crop: CropRef) -> bytes:
        root = Path(crop.root)
        if is_lmdb_dir(root):
            reader = self._readers.get(crop.root)
            if reader is None:
                reader = self._readers.setdefault(crop.root, LmdbReader(root))
            data = reader.get(hr_key(int(crop.name)))
            if data is None:
                raise SampleError(BadSample(hr_key(int(crop.name)), crop.root, "missing key", "missing_key"))
            return data
        path = root / crop.name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SampleError(BadSample(crop.name, str(root / "labels.tsv"), f"cannot read image: {exc}", "missing_key")) from None

    def produce(self, i: int) -> RawPair:
        """HR from the crop, LR by the degradation at this sample's strength."""
        crop = self.crops[i]
        where = str(Path(crop.root) / "labels.tsv") if not is_lmdb_dir(crop.root) else crop.root
        if crop.label == IGNORE_LABEL:
            raise SampleError(BadSample(crop.name, where, "label '###' (unreadable word)", "ignored_label"))
        if crop.label == "":
            raise SampleError(BadSample(crop.name, where, "empty label", "empty_label"))
        data = self._read_bytes(crop)
        try:
            hr = np.asarray(resize_bicubic(decode_image(data), HR_SIZE), dtype=np.uint8)
        except Exception as exc:
            raise SampleError(BadSample(crop.name, where, f"undecodable image: {exc}", "undecodable")) from None
        level_code = {"easy": 1, "medium": 2, "hard": 3, None: 0}[self.level]
        # Seeded by the crop's key, not its position: adding folders never changes a sample.
        key_code = int(hash_fraction(crop.key, self.seed) * 2**62)
        rng = np.random.default_rng([self.seed, level_code, key_code])
        params = sample_degradation(level_strength(self.level, rng), rng)
        lr = degrade(hr, params, rng)
        return RawPair(hr, lr, str_filt(crop.label, "all"), crop.label, crop.key)
