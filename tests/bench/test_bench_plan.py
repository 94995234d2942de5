"""What the paper budget costs on this device: the one prepared script for a lent GPU.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_plan.py --benchmark-only -o addopts="" -s -p no:randomly

It measures, on CUDA when present (else the CPU):

* TSRN's train step under the ``paper`` recipe (batch 48, ``tsrn_loss`` x100, gradient norm
  clipped at 0.25, Adam (0.5, 0.999)), fp32 and, on CUDA, bf16 autocast; the median step is
  projected to 500 epochs of TextZoom's train split (17,367 pairs: 362 steps an epoch);
* the floating-point work of that step and of TSRN's and ``crnn_tz``'s forward per image
  (``torch.utils.flop_counter``; device-independent: what docs/performance.md's GPU plan
  divides by a GPU's throughput);
* one ``tzbench.runner.evaluate`` of TSRN with every default offline judge on TextZoom's test
  layout (generated words in the real LMDB format; ``TZBENCH_BENCH_SCALE`` of its 4,373 pairs,
  default 0.25), projected to the whole test set.

Knobs: ``TZBENCH_BENCH_ROUNDS`` (timed train steps, default 10), ``TZBENCH_BENCH_SCALE``.
Each figure is in the result's ``extra_info``; a plan table is printed at the end. It takes about
two minutes on a GPU and two on the idle 2-core CPU (111 s on 2026-12-02).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tzbench.api import get_catalog
from tzbench.config import DataConfig, EvalConfig
from tzbench.data.convert import write_synth_lmdb
from tzbench.db.store import Store
from tzbench.registry import load_registry
from tzbench.runner.checkpoint import save_checkpoint
from tzbench.runner.context import build_sr_model
from tzbench.runner.evaluate import evaluate

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
ROUNDS = int(os.environ.get("TZBENCH_BENCH_ROUNDS", "10"))
SCALE = float(os.environ.get("TZBENCH_BENCH_SCALE", "0.25"))
#: TextZoom: train1 + train2 pairs, and the test subsets.
TRAIN_PAIRS = 17_367
TEST_SIZES = {"easy": 1619, "medium": 1411, "hard": 1343}
EPOCHS, BATCH = 500, 48


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _train_step_seconds(amp: bool) -> float:
    """Median seconds of one paper-recipe TSRN train step (after three untimed ones)."""
    catalog = get_catalog()
    torch.manual_seed(0)
    net = build_sr_model(catalog, "tsrn", {}).module.to(DEVICE).train()
    loss_fn = catalog.create("losses", "tsrn_loss").to(DEVICE)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(1)
    lr = torch.rand(BATCH, 4, 16, 64, generator=g).to(DEVICE)
    hr = torch.rand(BATCH, 4, 32, 128, generator=g).to(DEVICE)
    times = []
    for i in range(ROUNDS + 3):
        _sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(net(lr), hr) * 100
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.25)
        opt.step()
        _sync()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _gflop(fn: Callable[[], object]) -> float:
    """GFLOP that ``fn`` runs, counted by torch's dispatcher (the same on every device)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def _work_gflop() -> dict[str, float]:
    """GFLOP of one paper-recipe train step (batch 48) and of one image's SR and crnn_tz read."""
    import tzbench

    catalog = get_catalog()
    torch.manual_seed(0)
    net = build_sr_model(catalog, "tsrn", {}).module.train()
    net.fast_path = False  # count the plain path, the one CUDA runs (the CPU fast path reorders work)
    loss_fn = catalog.create("losses", "tsrn_loss")
    g = torch.Generator().manual_seed(1)
    lr, hr = torch.rand(BATCH, 4, 16, 64, generator=g), torch.rand(BATCH, 4, 32, 128, generator=g)
    work = {"train step GFLOP": _gflop(lambda: (loss_fn(net(lr), hr) * 100).backward())}
    net.eval()
    with torch.no_grad():
        work["tsrn GFLOP/image"] = _gflop(lambda: net(lr[:1]))
        judge = tzbench.create_recognizer("crnn_tz", device="cpu")
        work["crnn_tz GFLOP/image"] = _gflop(lambda: judge.recognize(hr[:1, :3]))
    return work


def _eval_images_per_second(tmp_path: Path) -> tuple[float, int, list[str]]:
    """TSRN + every default offline judge over a scaled TextZoom test layout: images/s."""
    root = tmp_path / "textzoom"
    sizes = {s: max(1, round(n * SCALE)) for s, n in TEST_SIZES.items()}
    for k, (subset, n) in enumerate(sizes.items()):
        assert write_synth_lmdb(root / "test" / subset, n, subset=subset, seed=k) == n
    torch.manual_seed(0)
    net = build_sr_model(get_catalog(), "tsrn", {}).module  # speed does not depend on the weights
    ckpt = save_checkpoint(tmp_path / "tsrn", net.state_dict(), {"sr_model": "tsrn", "params": {}, "kind": "model"})
    judges = list(load_registry().default_judges)
    cfg = EvalConfig(model={"name": "tsrn"}, checkpoint=str(ckpt), judges=judges, device=DEVICE.type,
                     data=DataConfig(dataset="textzoom", params={"root": str(root)}, eval_batch_size=64))
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    evaluate(cfg.model_copy(update={"max_samples": 64}), store, get_catalog(), progress=False)  # warm: not timed
    t0 = time.perf_counter()
    evaluate(cfg, store, get_catalog(), progress=False)
    n = sum(sizes.values())
    return n / (time.perf_counter() - t0), n, judges


def test_paper_budget_plan(benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZBENCH_NO_PROGRESS", "1")
    figures: dict[str, float] = {}

    def run_all() -> None:
        figures["fp32 s/step"] = _train_step_seconds(amp=False)
        if DEVICE.type == "cuda":
            figures["bf16 s/step"] = _train_step_seconds(amp=True)
        figures["eval images/s"], figures["eval images"], judges = _eval_images_per_second(tmp_path)
        figures["judges"] = len(judges)
        figures.update(_work_gflop())

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    steps = math.ceil(TRAIN_PAIRS / BATCH) * EPOCHS
    test_n = sum(TEST_SIZES.values())
    plan = {f"train 500 epochs {k.split()[0]} h": figures[k] * steps / 3600 for k in list(figures) if "s/step" in k}
    plan["eval 4,373 pairs s"] = test_n / figures["eval images/s"]
    benchmark.extra_info.update(device=str(DEVICE), steps=steps, load=os.getloadavg()[0], **figures, **plan)
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\npaper budget on {name} (load {os.getloadavg()[0]:.1f}):")
    for k, v in figures.items():
        print(f"  {k:22s} {v:10.3f}")
    print(f"  TSRN, {EPOCHS} epochs of {TRAIN_PAIRS:,} pairs at batch {BATCH} = {steps:,} steps:")
    for k, v in plan.items():
        print(f"  {k:22s} {v:10.1f}")
    assert all(v > 0 and math.isfinite(v) for v in plan.values())
