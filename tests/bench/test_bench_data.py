"""Data pipeline throughput: the official per-sample way vs tzbench's cached second epoch.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_data.py --benchmark-only -o addopts="" -s

A TextZoom-format LMDB of 5000 PNG pairs (HR 24-80 px high, 80-300 wide; LR about half) is
generated once in a temporary folder. Every variant yields collated float batches of 64
with the mask channel (TSRN's input, C = 4):

* ``official``: what the official loader does every epoch, per sample: three LMDB reads,
  PNG decode, RGB, bicubic resize of HR and LR, ToTensor, mask (gray, mean, threshold),
  then stacking;
* ``tzbench_first_epoch``: building the dataset (decode + resize + mask once, threaded);
* ``tzbench_dataloader``: a second epoch through ``torch.utils.data.DataLoader`` with
  ``tzbench.data.collate`` (shuffled, single process);
* ``tzbench_iter_batches``: a second epoch through ``PairDataset.iter_batches``;
* ``tzbench_disk_cache``: a fresh provider loading the on-disk cache.

Each result carries ``samples_per_s`` (and ``speedup_vs_official``) in ``extra_info``.
The test asserts the DataLoader second epoch is at least 20x the official way.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from tzbench.data import collate
from tzbench_textzoom.textzoom import TextZoomDataset

N = 5000
BATCH = 64
_results: dict[str, float] = {}


def _png(rng: np.random.Generator, h: int, w: int) -> bytes:
    low = rng.integers(0, 256, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
    img = Image.fromarray(low, "RGB").resize((w, h), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bench-textzoom")
    rng = np.random.default_rng(0)
    path = base / "test" / "easy"
    path.mkdir(parents=True)
    env = lmdb.open(str(path), map_size=1 << 30)
    with env.begin(write=True) as txn:
        for i in range(1, N + 1):
            h, w = int(rng.integers(24, 81)), int(rng.integers(80, 301))
            txn.put(b"image_hr-%09d" % i, _png(rng, h, w))
            txn.put(b"image_lr-%09d" % i, _png(rng, max(8, h // 2), max(32, w // 2)))
            txn.put(b"label-%09d" % i, f"word{i}".encode())
        txn.put(b"num-samples", str(N).encode())
    env.close()
    return base


def _official_epoch(path: Path) -> int:
    """One epoch the official way (per-sample decode, resize, mask; batches of 64)."""
    env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)

    def norm(data: bytes, size: tuple[int, int]) -> torch.Tensor:
        img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.BICUBIC)
        t = torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255)
        gray = img.convert("L")
        thr = np.array(gray).mean()
        m = gray.point(lambda x: 0 if x > thr else 255)
        return torch.cat([t, torch.from_numpy(np.array(m)).float().div(255)[None]], 0)

    seen = 0
    order = np.random.default_rng(1).permutation(N) + 1
    with env.begin() as txn:
        for start in range(0, N, BATCH):
            hrs, lrs, labels = [], [], []
            for i in order[start:start + BATCH]:
                hr = txn.get(b"image_hr-%09d" % i)
                lr = txn.get(b"image_lr-%09d" % i)
                labels.append(txn.get(b"label-%09d" % i).decode())
                hrs.append(norm(hr, (128, 32)))
                lrs.append(norm(lr, (64, 16)))
            torch.stack(hrs), torch.stack(lrs)
            seen += len(labels)
    env.close()
    return seen


def _record(benchmark, name: str, samples: int) -> float:
    rate = samples / benchmark.stats.stats.mean
    _results[name] = rate
    info = {"samples": samples, "batch": BATCH, "samples_per_s": round(rate, 1)}
    if "official" in _results and name != "official":
        info["speedup_vs_official"] = round(rate / _results["official"], 1)
    benchmark.extra_info.update(info)
    extra = f"  ({info['speedup_vs_official']}x official)" if "speedup_vs_official" in info else ""
    print(f"\n{name:22s} {rate:12.0f} samples/s{extra}")
    return rate


def test_bench_official(benchmark, root: Path) -> None:
    benchmark.pedantic(_official_epoch, args=(root / "test" / "easy",), rounds=1, iterations=1)
    _record(benchmark, "official", N)


def test_bench_tzbench_first_epoch(benchmark, root: Path) -> None:
    def build() -> None:
        ds = TextZoomDataset(root=str(root), mask=True, cache=True).load("test", "easy")
        assert len(ds) == N

    benchmark.pedantic(build, rounds=1, iterations=1)
    _record(benchmark, "tzbench_first_epoch", N)


@pytest.fixture(scope="module")
def dataset(root: Path):
    return TextZoomDataset(root=str(root), mask=True).load("test", "easy")


def test_bench_tzbench_dataloader(benchmark, dataset) -> None:
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=BATCH, shuffle=True, num_workers=0, collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
    )

    def epoch() -> int:
        n = 0
        for batch in loader:
            assert batch["hr"].shape[1:] == (4, 32, 128)
            n += batch["hr"].shape[0]
        return n

    epoch()  # the first epoch already happened at load(); this warms the loader
    benchmark.pedantic(epoch, rounds=3, iterations=1)
    rate = _record(benchmark, "tzbench_dataloader", N)
    assert "official" in _results, "run the whole file: the speed-up needs the official figure"
    assert rate >= 20 * _results["official"], (rate, _results["official"])


def test_bench_tzbench_iter_batches(benchmark, dataset) -> None:
    g = torch.Generator().manual_seed(0)

    def epoch() -> int:
        return sum(b["hr"].shape[0] for b in dataset.iter_batches(BATCH, shuffle=True, generator=g))

    benchmark.pedantic(epoch, rounds=3, iterations=1)
    _record(benchmark, "tzbench_iter_batches", N)


def test_bench_tzbench_disk_cache(benchmark, root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.mktemp("cache")
    TextZoomDataset(root=str(root), mask=True, cache=str(cache)).load("test", "easy")

    def load() -> None:
        t = time.perf_counter()
        ds = TextZoomDataset(root=str(root), mask=True, cache=str(cache)).load("test", "easy")
        assert len(ds) == N and time.perf_counter() - t >= 0

    benchmark.pedantic(load, rounds=3, iterations=1)
    _record(benchmark, "tzbench_disk_cache", N)
