"""Train-step speed options on the CPU: eager fp32 against bf16 autocast and ``torch.compile``.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_train_cpu.py --benchmark-only -o addopts="" -s -p no:randomly

For ``tsrn``, ``srcnn`` and ``srresnet`` at the ``cpu`` recipe's batch (16 LR crops of 16x64,
with each model's registered channels: RGB + mask for tsrn and srresnet), one train step is forward in train mode + MSE + backward + Adam. Three variants
start from the same weights:

* ``eager``: what the ``cpu`` recipe runs;
* ``bf16``: the forward under ``torch.autocast("cpu", torch.bfloat16)`` (``--amp bf16``);
* ``compile``: ``torch.compile`` (inductor, fp32) of the model; its compile time is measured
  apart and left out of the step time.

Step times are interleaved (one step of each variant per round, ``TZBENCH_BENCH_ROUNDS``
rounds, 12 by default), so the three see the same machine load, and the printed ratios are
of median step times. Parity: the train-mode output of each variant on one batch, against
eager's, as max |difference| (the reference tolerance for outputs is 1e-5; bf16 rounds to
8 mantissa bits, so it cannot meet it). ``TZBENCH_BENCH_MODELS`` picks the models
(comma-separated).
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Callable

import pytest
import torch
from torch import nn

ROUNDS = int(os.environ.get("TZBENCH_BENCH_ROUNDS", "12"))
MODELS = os.environ.get("TZBENCH_BENCH_MODELS", "tsrn,srcnn,srresnet").split(",")
BATCH = 16
if os.environ.get("TZBENCH_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["TZBENCH_BENCH_THREADS"]))


def _model(name: str) -> tuple[nn.Module, int]:
    """The model with its registered defaults (as the ``cpu`` recipe trains it) and its channel count."""
    from tzbench.api import get_catalog
    from tzbench.runner.context import build_sr_model

    torch.manual_seed(0)
    info = build_sr_model(get_catalog(), name, {})
    return info.module.train(), info.in_channels


def _stepper(model: nn.Module, variant: str) -> tuple[Callable[[torch.Tensor, torch.Tensor], float], nn.Module]:
    net = torch.compile(model) if variant == "compile" else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(x: torch.Tensor, hr: torch.Tensor) -> float:
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            sr = net(x)
        loss = (sr.float() - hr).square().mean()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step, net


def _measure(name: str) -> dict[str, float]:
    base, ch = _model(name)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(BATCH, ch, 16, 64, generator=g)
    hr = torch.rand(BATCH, ch, 32, 128, generator=g)
    variants = ("eager", "bf16", "compile")
    models = {v: copy.deepcopy(base) for v in variants}
    out: dict[str, float] = {}
    with torch.no_grad():
        torch.manual_seed(2)
        ref = models["eager"](x)
    steppers = {}
    for v in variants:
        step, net = _stepper(models[v], v)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=v == "bf16"):
            torch.manual_seed(2)  # the STN's dropout-free, but keep any RNG use identical
            y = net(x)
        out[f"{v}_max_diff"] = float((y.float() - ref).abs().max())
        step(x, hr)  # warm-up (for compile: the backward graph)
        out[f"{v}_first_s"] = time.perf_counter() - t0
        steppers[v] = step
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(ROUNDS):
        for v in variants:
            times[v].append(steppers[v](x, hr))
    for v in variants:
        out[f"{v}_s"] = statistics.median(times[v])
    return out


@pytest.mark.parametrize("name", MODELS)
def test_train_step_speed_options(benchmark, name: str) -> None:  # noqa: ANN001
    res = benchmark.pedantic(_measure, args=(name,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    e = res["eager_s"]
    print(f"\n{name}: eager {e:.3f} s/step | bf16 {res['bf16_s']:.3f} ({e / res['bf16_s']:.2f}x, "
          f"max|diff| {res['bf16_max_diff']:.1e}) | compile {res['compile_s']:.3f} ({e / res['compile_s']:.2f}x, "
          f"max|diff| {res['compile_max_diff']:.1e}, first step incl. compile {res['compile_first_s']:.1f} s) "
          f"| {torch.get_num_threads()} threads, {ROUNDS} rounds")
    assert res["eager_max_diff"] == 0.0
    assert res["compile_max_diff"] < 1e-4, "compiled model does not compute the eager model's output"
