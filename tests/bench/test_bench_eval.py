"""End-to-end evaluation throughput (images/s) on a TextZoom-sized test set.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_eval.py --benchmark-only -o addopts="" -s

A TextZoom-format LMDB with the official test sizes (easy 1619, medium 1411, hard 1343 = 4373
pairs of generated words) is written once per session; each benchmark is one full
``tzbench.runner.evaluate`` call as ``tzbench eval MODEL --data textzoom`` makes it: LMDB
decoding, SR once per batch, PSNR/SSIM on the same tensors, the ppocr judge, and the database
writes (``bicubic-no-judge`` shows the cost of everything but the judge). ``srcnn`` uses a seeded untrained checkpoint (speed does not depend on the weights).
Each result carries ``images``, ``images_per_s`` and ``device`` in its ``extra_info``.

``test_overlap_side_by_side`` times the overlapped eval (the default) against the one-thread
reference path (``TZBENCH_EVAL_SEQUENTIAL=1``) in one run, interleaved, so both see the same load:
bicubic with no judge, bicubic + ppocr, each default offline judge alone and all of them together.
It checks that both paths record the same rows. ``TZBENCH_BENCH_SCALE=0.25`` runs it on a quarter
of the TextZoom sizes (a loaded machine); every figure is in its ``extra_info``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from tzbench.api import get_catalog
from tzbench.config import DataConfig, EvalConfig
from tzbench.data.convert import write_synth_lmdb
from tzbench.db.store import Store
from tzbench.registry import load_registry
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


SCALE = float(os.environ.get("TZBENCH_BENCH_SCALE", "1"))


@pytest.fixture(scope="module")
def scaled_root(tmp_path_factory: pytest.TempPathFactory, textzoom_root: Path) -> tuple[Path, dict[str, int]]:
    if SCALE == 1:
        return textzoom_root, SIZES
    root = tmp_path_factory.mktemp("textzoom-scaled")
    sizes = {subset: max(1, round(n * SCALE)) for subset, n in SIZES.items()}
    for k, (subset, n) in enumerate(sizes.items()):
        assert write_synth_lmdb(root / "test" / subset, n, subset=subset, seed=k) == n
    return root, sizes


def test_overlap_side_by_side(benchmark, scaled_root: tuple[Path, dict[str, int]], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    root, sizes = scaled_root
    monkeypatch.setenv("TZBENCH_NO_PROGRESS", "1")
    store = Store(f"sqlite:///{tmp_path / 'bench.db'}")
    catalog = get_catalog()
    offline = list(load_registry().default_judges)
    combos = [[], ["ppocr"], *([j] for j in offline if j != "ppocr"), offline]
    n = sum(sizes.values())
    rate: dict[tuple[str, str], float] = {}
    cpu_ms: dict[tuple[str, str], float] = {}  # CPU time of all threads per image: what load cannot inflate
    rows: dict[tuple[str, str], list[tuple]] = {}

    def one(judges: list[str], path: str, max_samples: int | None = None) -> None:
        monkeypatch.setenv("TZBENCH_EVAL_SEQUENTIAL", "1" if path == "sequential" else "0")
        cfg = EvalConfig(model={"name": "bicubic"}, data=DataConfig(dataset="textzoom", params={"root": str(root)},
                         eval_batch_size=64), judges=judges, protocol="clean", device=DEVICE, max_samples=max_samples)
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = evaluate(cfg, store, catalog, progress=False)
        key = ("+".join(judges) or "no judge", path)
        rate[key] = n / (time.perf_counter() - t0)
        cpu_ms[key] = 1000 * (time.process_time() - c0) / n
        rows[key] = [(r.subset, r.recognizer, r.metric, r.value, r.n_samples) for r in outcome.rows]

    def run_all() -> None:
        for path in ("sequential", "overlapped"):  # imports, model files into the page cache: not timed
            one(offline, path, max_samples=64)
        rate.clear()
        cpu_ms.clear()
        rows.clear()
        for i, judges in enumerate(combos):  # alternate which path goes first: load drifts
            for path in (("sequential", "overlapped") if i % 2 == 0 else ("overlapped", "sequential")):
                one(judges, path)

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    names = ["+".join(j) or "no judge" for j in combos]
    for name in names:
        assert rows[(name, "overlapped")] == rows[(name, "sequential")], name
    slowest = min(names[1:-1], key=lambda k: rate[(k, "overlapped")])
    every = names[-1]
    figures = {f"{k} {p}": round(v, 1) for (k, p), v in rate.items()}
    figures.update({f"{k} {p} cpu ms/image": round(v, 2) for (k, p), v in cpu_ms.items()})
    figures["every judge time / slowest alone"] = round(rate[(slowest, "overlapped")] / rate[(every, "overlapped")], 3)
    benchmark.extra_info.update(images=n, device=DEVICE, load_after=os.getloadavg()[0], **figures)
    print(f"\n{n} TextZoom-format pairs ({DEVICE}, load {os.getloadavg()[0]:.1f}), images/s:")
    print(f"{'judges':24s} {'sequential':>10s} {'overlapped':>10s} {'speed-up':>8s}   CPU ms/image seq / ovl")
    for name in names:
        s, o = rate[(name, "sequential")], rate[(name, "overlapped")]
        print(f"{name:24s} {s:10.1f} {o:10.1f} {o / s:7.2f}x   {cpu_ms[(name, 'sequential')]:6.2f} / "
              f"{cpu_ms[(name, 'overlapped')]:6.2f}")
    print(f"every offline judge takes {rate[(slowest, 'overlapped')] / rate[(every, 'overlapped')]:.2f}x the time of "
          f"the slowest judge alone ({slowest}), both overlapped; sequential: "
          f"{rate[(slowest, 'sequential')] / rate[(every, 'sequential')]:.2f}x")
