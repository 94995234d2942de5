"""Deterministic split carving (validation from train, held-out test from a pool).

Model selection needs a validation split that never overlaps the training data and that
does not depend on anything but the data size and a seed, so two runs with the same seed
select on the same samples.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["carve_val", "hash_fraction"]


def carve_val(n: int, fraction: float = 0.05, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into (train, val): val = the last ``fraction`` of a seeded permutation.

    Both lists are sorted (reading order stays sequential). At least one sample goes to
    val when ``n >= 2`` and ``fraction > 0``; the two never overlap and together cover
    ``range(n)``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val fraction must be in [0, 1), got {fraction}")
    if n <= 0:
        return [], []
    n_val = int(round(n * fraction))
    if fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    perm = np.random.default_rng([int(seed), 0x7A1]).permutation(n)
    val = np.sort(perm[n - n_val:]) if n_val else np.empty(0, np.int64)
    train = np.sort(perm[: n - n_val])
    return train.tolist(), val.tolist()


def hash_fraction(key: str, seed: int = 0) -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (independent of other samples)."""
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
