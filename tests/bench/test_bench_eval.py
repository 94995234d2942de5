"""End-to-end evaluation throughput (images/s) on a TextZoom-sized test set.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_eval.py --benchmark-only -o addopts="" -s

A TextZoom-format LMDB with the official test sizes (easy 1619, medium 1411, hard 1343 = 4373
pairs of generated words) is written once per session; each benchmark is one full
``tzbench.runner.evaluate`` call as ``tzbench eval MODEL --data textzoom`` makes it: LMDB
decoding, SR once per batch, PSNR/SSIM on the same tensors, the ppocr judge, and the database
writes (``bicubic-no-judge`` shows the cost of everything but the judge). ``srcnn`` uses a seeded untrained checkpoint (speed does not depend on the weights).
Each result carries ``images``, ``images_per_s`` and ``device`` in its ``extra_info``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tzbench.api import get_catalog
from tzbench.config import DataConfig, EvalConfig
from tzbench.data.convert import write_synth_lmdb
from tzbench.db.store import Store
from tzbench.runner.checkpoint import save_checkpoint
from tzbench.runner.evaluate import evaluate

SIZES = {"easy": 1619, "medium": 1411, "hard": 1343}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def textzoom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("textzoom")
    for k, (subset, n) in enumerate(SIZES.items()):
        assert write_synth_lmdb(root / "test" / subset, n, subset=subset, seed=k) == n
    return root


@pytest.fixture(scope="module")
def srcnn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = get_catalog().create("sr-models", "srcnn")
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "srcnn", model.state_dict(),
                           {"sr_model": "srcnn", "params": {}, "kind": "model"})


@pytest.mark.parametrize(("model", "judges"), [("bicubic", ["ppocr"]), ("srcnn", ["ppocr"]), ("bicubic", [])],
                         ids=["bicubic+ppocr", "srcnn+ppocr", "bicubic-no-judge"])
def test_eval_images_per_second(benchmark, model: str, judges: list[str], textzoom_root: Path,
                                srcnn_checkpoint: Path, tmp_path: Path) -> None:
    os.environ["TZBENCH_NO_PROGRESS"] = "1"
    store = Store(f"sqlite:///{tmp_path / 'bench.db'}")
    catalog = get_catalog()
    cfg = EvalConfig(
        model={"name": model}, checkpoint=str(srcnn_checkpoint) if model == "srcnn" else None,
        data=DataConfig(dataset="textzoom", params={"root": str(textzoom_root)}, eval_batch_size=64),
        judges=judges, protocol="clean", device=DEVICE,
    )
    outcome = benchmark.pedantic(lambda: evaluate(cfg, store, catalog, progress=False), rounds=1, iterations=1)
    n = sum(s.n_images for s in outcome.summaries.values())
    assert n == sum(SIZES.values())
    assert {k: s.n_images for k, s in outcome.summaries.items()} == SIZES
    rate = n / benchmark.stats.stats.mean
    benchmark.extra_info.update(images=n, images_per_s=round(rate, 1), device=DEVICE)
    acc = outcome.summaries["easy"].accuracy.get("ppocr", float("nan"))
    print(f"\neval {model:8s} + {'+'.join(judges) or 'no judge':8s} on {n} TextZoom-format pairs ({DEVICE}): "
          f"{rate:7.1f} images/s (easy accuracy {acc:.3f})")
