"""Common provider logic: split/subset validation, policy, caching, memoised loads."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from tzbench.data.dataset import ConcatPairDataset, PairDataset, PairDatasetBase, PairSource
from tzbench.data.errors import BadSample, resolve_policy
from tzbench_textzoom.params import DataParams

__all__ = ["SPLITS", "TEST_SUBSETS", "DatasetProvider"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
TEST_SUBSETS: tuple[str, ...] = ("easy", "medium", "hard")


class DatasetProvider:
    """Base of the built-in dataset providers.

    A provider is built from its params (keyword arguments) and hands out datasets:
    ``subsets(split)`` lists the subsets of a split (test: easy, medium, hard; train and val
    have none) and ``load(split, subset)`` returns a :class:`~tzbench.data.PairDataset`
    (``subset=None`` on test = the three subsets concatenated). Loads are memoised per
    provider, so the first pass (decoding, rendering) happens once per object.
    """

    params_model: ClassVar[type[DataParams]] = DataParams
    name: ClassVar[str] = "dataset"

    def __init__(self, **params: Any) -> None:
        self.params = self.params_model(**params)
        self._loaded: dict[tuple[str, str | None], PairDatasetBase] = {}

    # -- contract ---------------------------------------------------------------------------
    def subsets(self, split: str) -> list[str]:
        """Subsets of ``split``: easy/medium/hard for test, none for train and val."""
        self._check_split(split)
        return list(TEST_SUBSETS) if split == "test" else []

    def load(self, split: str, subset: str | None = None) -> PairDatasetBase:
        """The dataset of ``split``/``subset`` (memoised)."""
        self._check_split(split)
        if subset is not None and subset not in self.subsets(split):
            raise ValueError(
                f"{self.name}: split {split!r} has no subset {subset!r}; subsets: {self.subsets(split) or 'none'}"
            )
        if split == "test" and subset is None:
            return ConcatPairDataset([self.load("test", s) for s in TEST_SUBSETS])
        key = (split, subset)
        if key not in self._loaded:
            p = self.params
            self._loaded[key] = PairDataset(
                self._source(split, subset),
                mask=p.mask,
                on_bad_sample=resolve_policy(p.on_bad_sample, split),
                cache=bool(p.cache),
                cache_dir=self._cache_dir(),
                threads=p.threads,
            )
        return self._loaded[key]

    @property
    def bad_samples(self) -> list[BadSample]:
        """Bad samples of every dataset loaded so far."""
        return [b for ds in self._loaded.values() for b in ds.bad_samples]

    # -- for subclasses ---------------------------------------------------------------------
    def _source(self, split: str, subset: str | None) -> PairSource:  # pragma: no cover - abstract
        raise NotImplementedError

    def _limit(self, items: list[Any]) -> list[Any]:
        n = self.params.max_samples
        return items if n is None else items[:n]

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"{self.name}: unknown split {split!r}; splits: {', '.join(SPLITS)}")

    def _cache_dir(self) -> str | None:
        c = self.params.cache
        if isinstance(c, str):
            return c
        if c:
            return os.environ.get("TZBENCH_DATA_CACHE") or None
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params.model_dump()})"
