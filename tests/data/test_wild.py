"""The wild dataset: real crops (shared/data/wild-train) with made LR, stable held-out splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tzbench.data import DatasetError
from tzbench.data.folder import list_crops, read_labels_tsv
from tzbench_textzoom.wild import WildDataset

from conftest import encode, make_samples, random_crop

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "wild-train"


def test_reads_the_shared_wild_train_folders() -> None:
    assert SHARED.is_dir(), f"expected the shared crops at {SHARED}"
    prov = WildDataset(root=str(SHARED), max_samples=12)
    crops = prov.split_crops()
    total = sum(len(v) for v in crops.values())
    assert total == 2000 + 257 + 4468
    assert 0.08 < len(crops["test"]) / total < 0.12  # the held-out tenth
    assert 0.03 < len(crops["val"]) / total < 0.06
    keys = {s: {c.key for c in v} for s, v in crops.items()}
    assert not keys["train"] & keys["test"] and not keys["val"] & keys["test"] and not keys["train"] & keys["val"]
    easy, hard = prov.load("test", "easy"), prov.load("test", "hard")
    assert len(easy) == len(hard) == 12 and easy.keys == hard.keys
    assert easy[0]["hr"].shape == (3, 32, 128) and easy[0]["lr"].shape == (3, 16, 64)
    assert torch.equal(easy[0]["hr"], hard[0]["hr"]) and not torch.equal(easy[0]["lr"], hard[0]["lr"])
    assert len(prov.load("train")) == 12


def test_splits_are_stable_when_folders_are_added(tmp_path: Path) -> None:
    one = WildDataset(root=str(SHARED / "svt")).split_crops()
    both = WildDataset(root=[str(SHARED / "svt"), str(SHARED / "iiit5k")]).split_crops()
    for split in ("train", "val", "test"):
        svt = [c.key for c in both[split] if c.key.startswith("svt/")]
        assert svt == [c.key for c in one[split]]


def _folder(root: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["a.png\tOPEN", "b.png\t###", 'c.png\t\\"SALE\\"', "d.png\tdamaged", "e.png\t"]
    (root).mkdir(parents=True)
    for name in "abce":
        (root / f"{name}.png").write_bytes(encode(random_crop(rng, 20, 60)))
    (root / "d.png").write_bytes(b"not a png")
    (root / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_ignored_empty_and_broken_crops_are_reported(tmp_path: Path) -> None:
    root = _folder(tmp_path / "crops")
    rows = read_labels_tsv(root / "labels.tsv")
    assert [r.label for r in rows] == ["OPEN", "###", '"SALE"', "damaged", ""]
    prov = WildDataset(root=str(root), test_fraction=0.5, val_fraction=0.0, on_bad_sample="skip")
    ds_all = [prov.load(s) if s != "test" else prov.load("test", "easy") for s in ("train", "test")]
    bad = {b.key: b.kind for d in ds_all for b in d.bad_samples}
    assert bad == {"b.png": "ignored_label", "d.png": "undecodable", "e.png": "empty_label"}
    labels = sorted(lab for d in ds_all for lab in d.labels)
    assert labels == ['"SALE"', "OPEN"]
    # '###' is a convention, never fatal; a broken image is under 'error'
    strict = WildDataset(root=str(root), test_fraction=0.5, val_fraction=0.0, on_bad_sample="error")
    with pytest.raises(DatasetError, match="d.png"):
        for s in ("train", "test"):
            strict.load(s, "easy" if s == "test" else None)


def test_lmdb_root_and_missing_root(raw_lmdb, tmp_path: Path) -> None:
    raw_lmdb(tmp_path / "db", make_samples(5, 1))
    crops = list_crops([tmp_path / "db"])
    assert [c.label for c in crops][:2] == ["Hello", "WORLD!"]
    prov = WildDataset(root=str(tmp_path / "db"), test_fraction=0.5)
    assert sum(len(prov.load(s) if s != "test" else prov.load("test", "hard")) for s in ("train", "val", "test")) == 5
    with pytest.raises(DatasetError, match="labels.tsv"):
        WildDataset(root=str(tmp_path / "empty-nothing")).load("train")
