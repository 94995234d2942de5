"""The learning-rate schedule and the seeded batch order of recognizer training."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

__all__ = ["schedule_factor", "shuffled_batches"]


def schedule_factor(progress: float, warmup: float, kind: str) -> float:
    """LR multiplier at ``progress`` in ``[0, 1]``: linear warm-up, then cosine to 0 (or constant)."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 1e-3)
    if kind == "constant":
        return 1.0
    rest = (progress - warmup) / max(1e-12, 1.0 - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * rest))


def shuffled_batches(n: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Index batches of ``n`` samples, endlessly: a fresh permutation per epoch (seeded by ``seed``
    and the epoch), the incomplete last batch of each epoch dropped."""
    if n < batch_size:
        raise ValueError(f"the training data has {n} samples, fewer than batch size {batch_size}")
    epoch = 0
    while True:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g)
        for i in range(n // batch_size):
            yield order[i * batch_size : (i + 1) * batch_size].tolist()
        epoch += 1
