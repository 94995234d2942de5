"""``tzbench.testing.check_dataset`` for every installed dataset (the list comes from the catalog).

Each built-in provider runs on a tiny source made here: ``synth`` generates a few pairs, and
``textzoom`` and ``wild`` read LMDBs written with tzbench's synthetic writer. A dataset this
file does not know is checked with its default params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tzbench
from tzbench.data.convert import write_synth_lmdb
from tzbench.testing import check_dataset

_CATALOG = tzbench.get_catalog()
NAMES = _CATALOG.names("datasets")
FONTS = ["DejaVuSans*"]  # the font every machine here has; rendering stays cheap and the same


def test_builtin_datasets_are_covered() -> None:
    assert {"synth", "textzoom", "wild"} <= set(NAMES)


def _params(name: str, root: Path) -> dict[str, Any]:
    if name == "synth":
        return {"n_train": 24, "n_test": 2, "fonts": FONTS, "val_fraction": 0.25}
    if name == "textzoom":
        for part, n, subset in (("train1", 6, None), ("train2", 4, None), ("test/easy", 2, "easy"),
                                ("test/medium", 2, "medium"), ("test/hard", 2, "hard")):
            write_synth_lmdb(root / part, n, subset, fonts=FONTS)
        return {"root": str(root), "val_fraction": 0.25}
    if name == "wild":
        write_synth_lmdb(root / "crops", 16, None, fonts=FONTS)
        return {"root": str(root / "crops"), "test_fraction": 0.5, "val_fraction": 0.25}
    return {}


@pytest.mark.parametrize("name", NAMES)
def test_dataset_contract(name: str, tmp_path: Path) -> None:
    check_dataset(name, _CATALOG, params=_params(name, tmp_path))
