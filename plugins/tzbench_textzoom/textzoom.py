"""The ``textzoom`` dataset: the official TextZoom LMDBs.

Layout under ``root`` (param, else ``$TZBENCH_TEXTZOOM``)::

    train1/  train2/                 training LMDBs (17,367 pairs together)
    test/easy/  test/medium/  test/hard/   (1,619 / 1,411 / 1,343 pairs)

train = train1 + train2 minus the carved validation part (``val_fraction`` of a seeded
permutation, default 5%); test subsets are read whole. Samples are decoded exactly as the
official loader does (see :mod:`tzbench.data.textzoom_lmdb`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tzbench.data.dataset import PairSource
from tzbench.data.errors import DatasetError
from tzbench.data.splits import carve_val
from tzbench.data.textzoom_lmdb import LmdbPairSource, LmdbReader, is_lmdb_dir
from tzbench_textzoom.base import DatasetProvider
from tzbench_textzoom.params import TextZoomParams

__all__ = ["TextZoomDataset", "ENV_ROOT"]

ENV_ROOT = "TZBENCH_TEXTZOOM"
TRAIN_PARTS = ("train1", "train2")


class TextZoomDataset(DatasetProvider):
    """Provider of the official TextZoom LMDBs. Params: :class:`TextZoomParams`."""

    params_model = TextZoomParams
    name = "textzoom"
    params: TextZoomParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._readers: dict[str, LmdbReader] = {}

    @property
    def root(self) -> Path:
        """The TextZoom folder; DatasetError when neither the param nor the variable is set."""
        root = self.params.root or os.environ.get(ENV_ROOT)
        if not root:
            raise DatasetError(
                f"textzoom: no data folder; pass root=... or set ${ENV_ROOT} to the folder holding "
                "train1/, train2/ and test/{easy,medium,hard}/ (TextZoom LMDBs). "
                "Use --data synth for the embedded generated data."
            )
        return Path(root).expanduser()

    def _reader(self, rel: str) -> LmdbReader:
        if rel not in self._readers:
            self._readers[rel] = LmdbReader(self.root / rel)
        return self._readers[rel]

    def _require(self, rels: list[str]) -> None:
        missing = [r for r in rels if not is_lmdb_dir(self.root / r)]
        if missing:
            raise DatasetError(
                f"textzoom: {self.root} lacks {', '.join(missing)} (no data.mdb there). Expected the "
                "TextZoom layout: train1/, train2/, test/easy/, test/medium/, test/hard/, each an LMDB folder."
            )

    def _source(self, split: str, subset: str | None) -> PairSource:
        p = self.params
        if split == "test":
            rel = f"test/{subset}"
            self._require([rel])
            reader = self._reader(rel)
            entries = [(0, i) for i in range(1, reader.num_samples() + 1)]
            return LmdbPairSource([reader], self._limit(entries), lr_source=p.lr_source)
        self._require(list(TRAIN_PARTS))
        readers = [self._reader(r) for r in TRAIN_PARTS]
        entries = [(k, i) for k, r in enumerate(readers) for i in range(1, r.num_samples() + 1)]
        train, val = carve_val(len(entries), p.val_fraction, p.seed)
        chosen = [entries[j] for j in (train if split == "train" else val)]
        return LmdbPairSource(readers, self._limit(chosen), lr_source=p.lr_source)
