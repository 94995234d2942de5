"""The example dataset: generated words of digits drawn as bars, offline and deterministic.

Each digit d is a block of d + 1 one-pixel dark bars (two pixels apart) on a light background, so the HR image carries
its label; LR is the HR downsampled with Pillow's bicubic filter (as TextZoom's), plus noise
that grows from the easy to the hard test subset. The provider follows the dataset contract:
``subsets(split)`` and ``load(split, subset)`` returning items ``{lr, hr, label, index}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from tzbench.data import HR_SIZE, LR_SIZE, mask_from_rgb, resize_bicubic

SPLITS = ("train", "val", "test")
SUBSETS = ("easy", "medium", "hard")
NOISE = {None: 4.0, "easy": 2.0, "medium": 8.0, "hard": 16.0}


def _pair(seed: int, split: str, subset: str | None, i: int, mask: bool) -> dict[str, Any]:
    # One generator per sample: item i is the same whatever else was generated before it.
    rng = np.random.default_rng([seed, SPLITS.index(split), SUBSETS.index(subset) + 1 if subset else 0, i])
    label = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 5))))
    w, h = HR_SIZE
    hr = np.full((h, w, 3), 230, np.uint8)
    x = 4  # at most 4 digits of 10 bars: 4 + 4 * (10 * 2 + 3) = 96 columns, inside the 128
    for d in label:
        for _ in range(int(d) + 1):
            hr[6:26, x] = 30
            x += 2
        x += 3
    lr = np.asarray(resize_bicubic(Image.fromarray(hr), LR_SIZE), np.float32)
    lr = np.clip(lr + rng.normal(0, NOISE[subset], lr.shape), 0, 255).round().astype(np.uint8)
    return {"lr": _chw(lr, mask), "hr": _chw(hr, mask), "label": label, "index": i}


def _chw(rgb: np.ndarray, mask: bool) -> torch.Tensor:
    planes = np.dstack([rgb, mask_from_rgb(rgb)]) if mask else rgb
    return torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))


class BarsSplit(Dataset):
    """One split (or test subset): items generated on demand."""

    def __init__(self, n: int, seed: int, split: str, subset: str | None, mask: bool) -> None:
        self.n, self.seed, self.split, self.subset, self.mask = n, seed, split, subset, mask
        self.bad_samples: list[Any] = []  # generated data has none; the runner records the count

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(f"bars: index {i} out of range for {self.n} samples")
        return _pair(self.seed, self.split, self.subset, i, self.mask)


class Bars:
    """The provider: ``Bars(**params).load(split, subset)``."""

    def __init__(self, mask: bool = False, n_train: int = 64, n_val: int = 16, n_test: int = 16, seed: int = 0) -> None:
        self.mask, self.seed = mask, seed
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}

    def subsets(self, split: str) -> list[str]:
        """The test split has easy/medium/hard; train and val are loaded whole (subset None)."""
        if split not in SPLITS:
            raise ValueError(f"bars: unknown split {split!r}; splits: {', '.join(SPLITS)}")
        return list(SUBSETS) if split == "test" else []

    def load(self, split: str, subset: str | None = None) -> BarsSplit:
        if subset not in [*self.subsets(split), None] or (split == "test" and subset is None):
            raise ValueError(f"bars: split {split!r} has no subset {subset!r}; subsets: {self.subsets(split) or 'none'}")
        return BarsSplit(self.sizes[split], self.seed, split, subset, self.mask)
