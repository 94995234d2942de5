"""The ``synth`` dataset: generated TextZoom-like pairs, the embedded default.

Sizes (defaults chosen so that ``tzbench train srcnn`` finishes in minutes on a CPU):
``n_train`` = 2000 generated training pairs, of which ``val_fraction`` (5%, 100 pairs) are
carved out as val; ``n_test`` = 300 pairs per test subset (easy, medium, hard). Generation is
deterministic in ``(seed, split, subset, index)``; see :mod:`tzbench.data.synth`.
"""

from __future__ import annotations

from tzbench.data.dataset import BicubicLRSource, PairSource
from tzbench.data.splits import carve_val
from tzbench.data.synth import SynthSource
from tzbench_textzoom.base import DatasetProvider
from tzbench_textzoom.params import SynthParams

__all__ = ["SynthDataset"]


class SynthDataset(DatasetProvider):
    """Provider of synthetic pairs. Params: :class:`SynthParams`."""

    params_model = SynthParams
    name = "synth"
    params: SynthParams

    def _source(self, split: str, subset: str | None) -> PairSource:
        src = self._degraded_source(split, subset)
        return BicubicLRSource(src) if self.params.lr_source == "bicubic" else src

    def _degraded_source(self, split: str, subset: str | None) -> PairSource:
        p = self.params
        if split == "test":
            return SynthSource("test", subset, self._limit(list(range(p.n_test))), p.seed, p.fonts)
        train, val = carve_val(p.n_train, p.val_fraction, p.seed)
        return SynthSource("train", None, self._limit(train if split == "train" else val), p.seed, p.fonts)
