"""Throughput of the baselines: forward (eval, no grad) and forward+backward (train) samples/s.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_baselines.py --benchmark-only -o addopts=""

Batch 64 at LR 16x64, except RRDB and EDSR: on CPU one batch-64 iteration of those takes
well over 20 s (measured: RRDB forward+backward ~150 s, EDSR forward ~22 s on 2 cores), so they
use batch 8; samples/s stays comparable. Uses CUDA when present. Each result carries
``batch``, ``device`` and ``samples_per_s`` in its ``extra_info`` (also printed with ``-s``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from tzbench.specs import resolve_target
from tzbench_baselines.plugin import BASELINE_SPECS

SPECS = {spec.name: spec for spec in BASELINE_SPECS}
BATCH = 64
SMALLER_BATCH = {"rrdb": 8, "edsr": 8}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _setup(name: str, train: bool) -> tuple[torch.nn.Module, torch.Tensor, int]:
    spec = SPECS[name]
    model = resolve_target(spec.target)(**spec.params().model_dump()).to(DEVICE)
    model.train(train)
    channels = spec.in_channels if spec.in_channels is not None else model.in_channels
    batch = SMALLER_BATCH.get(name, BATCH)
    x = torch.rand(batch, channels, 16, 64, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    return model, x, batch


def _run(benchmark, name: str, mode: str, step: Callable[[], None], batch: int) -> None:
    big = name in SMALLER_BATCH
    benchmark.pedantic(step, rounds=2 if big else 3, warmup_rounds=1, iterations=1)
    samples_per_s = batch / benchmark.stats.stats.mean
    benchmark.extra_info.update(batch=batch, device=str(DEVICE), samples_per_s=round(samples_per_s, 2))
    print(f"\n{name:9s} {mode:16s} batch {batch:3d} on {DEVICE}: {samples_per_s:8.2f} samples/s")


@pytest.mark.parametrize("name", list(SPECS))
def test_bench_forward(benchmark, name: str) -> None:
    model, x, batch = _setup(name, train=False)

    def step() -> None:
        with torch.no_grad():
            model(x)
        _sync()

    _run(benchmark, name, "forward", step, batch)


@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if s.trainable])
def test_bench_forward_backward(benchmark, name: str) -> None:
    model, x, batch = _setup(name, train=True)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        _sync()

    _run(benchmark, name, "forward+backward", step, batch)
