"""Fixtures for the data tests: tiny TextZoom-layout LMDBs generated in tmp dirs.

The LMDBs are written with the raw ``lmdb`` API (not tzbench's writer), so the reader is
tested against the official layout itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image


def encode(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format=fmt)
    return buf.getvalue()


def random_crop(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth-ish random image (so JPEG/bicubic behave like on photos)."""
    low = rng.integers(0, 256, (max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8)
    img = Image.fromarray(low, "RGB").resize((w, h), Image.BILINEAR)
    return np.asarray(img).copy()


def write_raw_lmdb(
    path: Path,
    samples: list[tuple[bytes | None, bytes | None, bytes | None]],
    num_samples: int | None = None,
) -> Path:
    """Official layout: num-samples + 1-based image_hr/image_lr/label keys (None = key absent)."""
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i, (hr, lr, label) in enumerate(samples, 1):
            if hr is not None:
                txn.put(b"image_hr-%09d" % i, hr)
            if lr is not None:
                txn.put(b"image_lr-%09d" % i, lr)
            if label is not None:
                txn.put(b"label-%09d" % i, label)
        txn.put(b"num-samples", str(len(samples) if num_samples is None else num_samples).encode())
    env.close()
    return path


def make_samples(n: int, seed: int, fmt: str = "PNG") -> list[tuple[bytes, bytes, bytes]]:
    rng = np.random.default_rng(seed)
    words = ["Hello", "WORLD!", "e-mail", "café", "don't", "Kelvin", "100%", "exit"]
    out = []
    for i in range(n):
        hh, hw = int(rng.integers(20, 60)), int(rng.integers(60, 200))
        lh, lw = int(rng.integers(8, 30)), int(rng.integers(30, 100))
        out.append((encode(random_crop(rng, hh, hw), fmt), encode(random_crop(rng, lh, lw), fmt),
                    words[i % len(words)].encode()))
    return out


@pytest.fixture
def textzoom_root(tmp_path: Path) -> Path:
    """A TextZoom folder: train1 (12), train2 (8), test/easy|medium|hard (5, 4, 3; JPEG in hard)."""
    root = tmp_path / "textzoom"
    write_raw_lmdb(root / "train1", make_samples(12, 1))
    write_raw_lmdb(root / "train2", make_samples(8, 2))
    for k, (sub, n) in enumerate((("easy", 5), ("medium", 4), ("hard", 3))):
        write_raw_lmdb(root / "test" / sub, make_samples(n, 10 + k, "JPEG" if sub == "hard" else "PNG"))
    return root


@pytest.fixture
def raw_lmdb() -> Callable[..., Path]:
    """The raw writer, for tests that build broken LMDBs."""
    return write_raw_lmdb
