"""The ``wild`` dataset: real word crops with camera-like made LR.

``root``: one or more folders with ``labels.tsv`` (format in :mod:`tzbench.data.folder`),
LMDBs (their HR images are used), or parents of those (every child is used, sorted). Default:
``$TZBENCH_WILD``, else ``../shared/data/wild-train`` next to a source checkout.

Splits are assigned per crop by a stable hash of ``<folder name>/<file>`` and ``split_seed``:
a held-out tenth (``test_fraction``) is the test split, 5% of the crops (``val_fraction``) are
val, the rest train; adding or removing folders never moves a crop between splits. The test
subsets easy/medium/hard hold the same crops degraded at the three strengths; train and val
mix strengths. Labels ``###`` are skipped and counted; labels are filtered with
``str_filt(label, 'all')``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tzbench.data.dataset import BicubicLRSource, PairSource
from tzbench.data.errors import DatasetError
from tzbench.data.folder import CropRef, WildSource, list_crops
from tzbench.data.splits import hash_fraction
from tzbench_textzoom.base import DatasetProvider
from tzbench_textzoom.params import WildParams

__all__ = ["WildDataset", "ENV_ROOT"]

ENV_ROOT = "TZBENCH_WILD"


def _default_roots() -> list[str]:
    env = os.environ.get(ENV_ROOT)
    if env:
        return [r for r in env.split(os.pathsep) if r]
    # A source checkout sits next to ../shared/data (the project's working layout).
    repo = Path(__file__).resolve().parents[2]
    candidate = repo.parent / "shared" / "data" / "wild-train"
    if candidate.is_dir():
        return [str(candidate)]
    raise DatasetError(
        f"wild: no data folder; pass root=... (folders with labels.tsv) or set ${ENV_ROOT}"
    )


class WildDataset(DatasetProvider):
    """Provider of real crops with made LR. Params: :class:`WildParams`."""

    params_model = WildParams
    name = "wild"
    params: WildParams

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._crops: dict[str, list[CropRef]] | None = None

    @property
    def roots(self) -> list[str]:
        """The configured roots (param or default)."""
        r = self.params.root
        if r is None:
            return _default_roots()
        if isinstance(r, str):
            return [x for x in r.split(os.pathsep) if x]
        return list(r)

    def split_crops(self) -> dict[str, list[CropRef]]:
        """Crops per split (train, val, test), each in listing order."""
        if self._crops is None:
            p = self.params
            out: dict[str, list[CropRef]] = {"train": [], "val": [], "test": []}
            for crop in list_crops(self.roots):
                u = hash_fraction(crop.key, p.split_seed)
                if u < p.test_fraction:
                    out["test"].append(crop)
                elif u < p.test_fraction + p.val_fraction * (1 - p.test_fraction):
                    out["val"].append(crop)
                else:
                    out["train"].append(crop)
            self._crops = out
        return self._crops

    def _source(self, split: str, subset: str | None) -> PairSource:
        src = self._degraded_source(split, subset)
        return BicubicLRSource(src) if self.params.lr_source == "bicubic" else src

    def _degraded_source(self, split: str, subset: str | None) -> PairSource:
        crops = self._limit(self.split_crops()[split])
        return WildSource(crops, subset, self.params.seed, description=f"wild {split}")
