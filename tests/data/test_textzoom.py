"""The textzoom provider on generated official-layout LMDBs: decoding parity, splits, bad
samples (skip and error), caches."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tzbench.data import DatasetError, PairDataset, collate
from tzbench.data.textzoom_lmdb import LmdbPairSource, LmdbReader
from tzbench.text import str_filt
from tzbench_textzoom.textzoom import TextZoomDataset

from conftest import encode, make_samples, random_crop


def official_decode(hr: bytes, lr: bytes, mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The official per-sample path, written independently: PIL RGB, bicubic, ToTensor, mask."""

    def norm(data: bytes, size: tuple[int, int]) -> torch.Tensor:
        img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.BICUBIC)
        t = torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)
        if mask:
            gray = img.convert("L")
            thr = np.array(gray).mean()
            m = gray.point(lambda x: 0 if x > thr else 255)
            t = torch.cat([t, torch.from_numpy(np.array(m)).float().div(255)[None]], 0)
        return t

    return norm(hr, (128, 32)), norm(lr, (64, 16))


@pytest.mark.parametrize("mask", [False, True])
def test_test_subset_matches_official_decoding(textzoom_root: Path, mask: bool) -> None:
    prov = TextZoomDataset(root=str(textzoom_root), mask=mask)
    assert prov.subsets("test") == ["easy", "medium", "hard"] and prov.subsets("train") == []
    raw = make_samples(3, 12, "JPEG")  # the same bytes the fixture wrote to test/hard
    ds = prov.load("test", "hard")
    assert len(ds) == 3 and ds.bad_samples == []
    batch = collate([ds[i] for i in range(3)])
    c = 4 if mask else 3
    assert batch["hr"].shape == (3, c, 32, 128) and batch["lr"].shape == (3, c, 16, 64)
    for i, (hr, lr, label) in enumerate(raw):
        ref_hr, ref_lr = official_decode(hr, lr, mask)
        assert torch.equal(batch["hr"][i], ref_hr)
        assert torch.equal(batch["lr"][i], ref_lr)
        assert batch["label"][i] == str_filt(label.decode(), "all")
    assert ds.raw_labels[2] == "e-mail" and ds[0]["hr"].dtype == torch.uint8


def test_label_filter_and_all_subsets(textzoom_root: Path) -> None:
    prov = TextZoomDataset(root=str(textzoom_root))
    easy = prov.load("test", "easy")
    assert easy.labels == ["Hello", "WORLD!", "e-mail", "caf", "don't"]
    assert easy.raw_labels[3] == "café"
    full = prov.load("test")
    assert len(full) == 5 + 4 + 3
    assert [full[i]["index"] for i in range(len(full))] == list(range(12))
    assert torch.equal(full[5]["hr"], prov.load("test", "medium")[0]["hr"])
    with pytest.raises(ValueError, match="no subset"):
        prov.load("train", "easy")
    with pytest.raises(ValueError, match="unknown split"):
        prov.load("dev")


def test_lr_source_bicubic_is_x2_of_the_hr(textzoom_root: Path) -> None:
    ds = TextZoomDataset(root=str(textzoom_root), lr_source="bicubic").load("test", "easy")
    hr = Image.fromarray(ds[1]["hr"].permute(1, 2, 0).numpy())
    expected = np.asarray(hr.resize((64, 16), Image.BICUBIC))
    np.testing.assert_array_equal(ds[1]["lr"].permute(1, 2, 0).numpy(), expected)


def test_train_val_carve_is_disjoint_complete_and_seeded(textzoom_root: Path) -> None:
    prov = TextZoomDataset(root=str(textzoom_root), val_fraction=0.25)
    train, val = prov.load("train"), prov.load("val")
    assert len(train) + len(val) == 20 and len(val) == 5
    assert not set(train.keys) & set(val.keys)
    assert {k.split("/")[0] for k in train.keys} == {"train1", "train2"}
    again = TextZoomDataset(root=str(textzoom_root), val_fraction=0.25).load("val")
    assert again.keys == val.keys
    other = TextZoomDataset(root=str(textzoom_root), val_fraction=0.25, seed=1).load("val")
    assert other.keys != val.keys
    assert len(TextZoomDataset(root=str(textzoom_root), max_samples=4).load("train")) == 4


def test_missing_root_and_folders_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                textzoom_root: Path) -> None:
    monkeypatch.delenv("TZBENCH_TEXTZOOM", raising=False)
    with pytest.raises(DatasetError, match="TZBENCH_TEXTZOOM"):
        TextZoomDataset().load("test", "easy")
    with pytest.raises(DatasetError, match=r"lacks train1, train2.*test/easy"):
        TextZoomDataset(root=str(tmp_path / "nowhere")).load("train")
    monkeypatch.setenv("TZBENCH_TEXTZOOM", str(textzoom_root))
    assert len(TextZoomDataset().load("test", "medium")) == 4


# -- bad samples ----------------------------------------------------------------------------

def _broken(kind: str, raw_lmdb, tmp_path: Path) -> tuple[Path, str]:
    good = make_samples(4, 5)
    samples = [list(s) for s in good]
    num = None
    if kind == "undecodable":
        samples[1][0] = b"\x89PNG\r\n\x1a\n truncated garbage"
        key = "image_hr-000000002"
    elif kind == "missing_key":
        samples[2][1] = None
        key = "image_lr-000000003"
    elif kind == "empty_label":
        samples[3][2] = b""
        key = "label-000000004"
    elif kind == "count_mismatch_more":  # num-samples says more than stored
        num, key = 6, "image_hr-000000005"
    elif kind == "count_mismatch_less":  # stored samples beyond num-samples
        num, key = 3, "num-samples"
    else:
        raise AssertionError(kind)
    root = tmp_path / kind
    raw_lmdb(root / "test" / "easy", [tuple(s) for s in samples], num_samples=num)
    return root, key


@pytest.mark.parametrize("kind,n_good,n_bad", [
    ("undecodable", 3, 1), ("missing_key", 3, 1), ("empty_label", 3, 1),
    ("count_mismatch_more", 4, 3), ("count_mismatch_less", 3, 1),
])
def test_bad_sample_skip_is_counted_with_path_and_key(kind, n_good, n_bad, raw_lmdb, tmp_path: Path) -> None:
    root, key = _broken(kind, raw_lmdb, tmp_path)
    ds = TextZoomDataset(root=str(root), on_bad_sample="skip").load("test", "easy")
    assert len(ds) == n_good
    assert len(ds.bad_samples) == n_bad
    assert key in [b.key for b in ds.bad_samples]
    assert all(b.path.endswith("easy") for b in ds.bad_samples)
    kinds = {b.kind for b in ds.bad_samples}
    assert kinds <= {"undecodable", "missing_key", "empty_label", "count_mismatch"}
    if kind.startswith("count"):
        assert "count_mismatch" in kinds
    # the surviving samples are intact and re-indexed densely
    assert [ds[i]["index"] for i in range(len(ds))] == list(range(n_good))


@pytest.mark.parametrize("kind", ["undecodable", "missing_key", "empty_label", "count_mismatch_more",
                                  "count_mismatch_less"])
def test_bad_sample_error_names_path_and_key(kind, raw_lmdb, tmp_path: Path) -> None:
    root, key = _broken(kind, raw_lmdb, tmp_path)
    # the test split refuses bad samples by default
    with pytest.raises(DatasetError) as info:
        TextZoomDataset(root=str(root)).load("test", "easy")
    msg = str(info.value)
    assert str(root / "test" / "easy") in msg
    first_key = {"count_mismatch_more": "num-samples"}.get(kind, key)
    assert first_key in msg


def test_default_policy_skips_on_train(raw_lmdb, tmp_path: Path) -> None:
    samples = make_samples(4, 7)
    samples[0] = (b"not an image", samples[0][1], samples[0][2])
    raw_lmdb(tmp_path / "tz" / "train1", samples)
    raw_lmdb(tmp_path / "tz" / "train2", make_samples(2, 8))
    prov = TextZoomDataset(root=str(tmp_path / "tz"), val_fraction=0.0)
    train = prov.load("train")
    assert len(train) == 5 and [b.key for b in train.bad_samples] == ["image_hr-000000001"]
    assert prov.bad_samples == train.bad_samples
    with pytest.raises(DatasetError, match="image_hr-000000001"):
        TextZoomDataset(root=str(tmp_path / "tz"), val_fraction=0.0, on_bad_sample="error").load("train")


def test_missing_num_samples_is_an_error(raw_lmdb, tmp_path: Path) -> None:
    import lmdb

    path = tmp_path / "x" / "test" / "easy"
    raw_lmdb(path, make_samples(2, 1))
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.delete(b"num-samples")
    env.close()
    with pytest.raises(DatasetError, match="num-samples"):
        TextZoomDataset(root=str(tmp_path / "x"), on_bad_sample="skip").load("test", "easy")


# -- cache ----------------------------------------------------------------------------------

def test_second_epoch_and_disk_cache_never_decode(textzoom_root: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import tzbench.data.textzoom_lmdb as tl

    cache = tmp_path / "cache"
    first = TextZoomDataset(root=str(textzoom_root), cache=str(cache), mask=True).load("test", "medium")
    files = list(cache.glob("pairs-*.pt"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("decoded after the first pass")

    monkeypatch.setattr(tl, "decode_image", boom)
    # epoch 2 of the same object: tensor views only
    items = [first[i] for i in range(len(first))]
    # a fresh process-like provider: loaded from disk, not decoded
    second = TextZoomDataset(root=str(textzoom_root), cache=str(cache), mask=True).load("test", "medium")
    for a, b in zip(items, (second[i] for i in range(len(second)))):
        assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"]) and a["label"] == b["label"]
    monkeypatch.undo()
    # a different option (no mask) is a different cache entry
    TextZoomDataset(root=str(textzoom_root), cache=str(cache)).load("test", "medium")
    assert len(list(cache.glob("pairs-*.pt"))) == 2
    # a corrupt cache file is rebuilt, not trusted
    files[0].write_bytes(b"garbage")
    again = TextZoomDataset(root=str(textzoom_root), cache=str(cache), mask=True).load("test", "medium")
    assert torch.equal(again[0]["hr"], items[0]["hr"])


def test_cache_keeps_bad_sample_report_and_policy(raw_lmdb, tmp_path: Path) -> None:
    root, key = _broken("undecodable", raw_lmdb, tmp_path)
    cache = tmp_path / "c"
    ds = TextZoomDataset(root=str(root), cache=str(cache), on_bad_sample="skip").load("test", "easy")
    again = TextZoomDataset(root=str(root), cache=str(cache), on_bad_sample="skip").load("test", "easy")
    assert [b.key for b in again.bad_samples] == [b.key for b in ds.bad_samples] == [key]
    with pytest.raises(DatasetError, match=key):
        TextZoomDataset(root=str(root), cache=str(cache)).load("test", "easy")


def test_uncached_dataset_gives_the_same_items(textzoom_root: Path) -> None:
    a = TextZoomDataset(root=str(textzoom_root)).load("test", "easy")
    b = TextZoomDataset(root=str(textzoom_root), cache=False).load("test", "easy")
    for i in range(len(a)):
        assert torch.equal(a[i]["hr"], b[i]["hr"]) and torch.equal(a[i]["lr"], b[i]["lr"])
    batches = list(a.iter_batches(2))
    assert [x["lr"].shape[0] for x in batches] == [2, 2, 1]
    assert torch.equal(batches[0]["hr"], collate([a[0], a[1]])["hr"])
    assert torch.equal(list(b.iter_batches(5))[0]["lr"], collate([a[i] for i in range(5)])["lr"])
    for ds in (a, b, TextZoomDataset(root=str(textzoom_root)).load("test")):
        got = ds.get_batch([4, 0, -1])
        ref = collate([ds[4], ds[0], ds[len(ds) - 1]])
        assert torch.equal(got["hr"], ref["hr"]) and torch.equal(got["lr"], ref["lr"])
        assert got["label"] == ref["label"] and got["index"].tolist() == [4, 0, len(ds) - 1]
    with pytest.raises(IndexError):
        a.get_batch([5])


def test_dataloader_with_forked_workers(textzoom_root: Path) -> None:
    ds = TextZoomDataset(root=str(textzoom_root), cache=False).load("test", "easy")
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=collate)
    batches = list(loader)
    assert sum(len(b["label"]) for b in batches) == 5
    assert torch.equal(batches[0]["hr"], collate([ds[0], ds[1]])["hr"])


def test_source_reads_several_lmdbs_in_order(textzoom_root: Path) -> None:
    readers = [LmdbReader(textzoom_root / "train1"), LmdbReader(textzoom_root / "train2")]
    src = LmdbPairSource(readers, entries=[(1, 8), (0, 1)])
    ds = PairDataset(src)
    assert ds.keys == ["train2/8", "train1/1"]
    assert ds.labels == ["exit", "Hello"]
