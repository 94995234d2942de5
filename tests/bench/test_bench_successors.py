"""Train-step cost of TSRN and its successors, each with its default loss, side by side.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_successors.py --benchmark-only -o addopts="" -s -p no:randomly

One step is what the runner does for a batch: the model's train-mode forward on 16 LR crops
(the ``cpu`` recipe's batch, 16x64, each model's registered channels), its default loss (with
the batch's words for a loss that reads them), backward and an Adam step. Every model is built
with its registered defaults, so the priors and teachers are the ones a ``tzbench train`` run
gets (``crnn_tz`` where no official weights are installed). The models take turns, one step each
per round (``TZBENCH_BENCH_ROUNDS`` rounds, 4 by default, after one untimed), so all see the same
machine load; the printed ratios are of median step times against TSRN's.
``TZBENCH_BENCH_MODELS`` picks the models (comma-separated, TSRN first).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import pytest
import torch

ROUNDS = int(os.environ.get("TZBENCH_BENCH_ROUNDS", "4"))
MODELS = os.environ.get("TZBENCH_BENCH_MODELS", "tsrn,tbsrn,pcan,tpgsr,tatt").split(",")
BATCH = 16
WORDS = ["coffee", "OPEN", "street", "2019", "Hotel", "exit", "BANK", "menu"]


def _loss(catalog, name: str, params: dict) -> torch.nn.Module:
    """The default loss; TBSRN's text-focus loss with a random reader when the official one is absent
    (it is not downloadable here, and untrained weights cost the same)."""
    from tzbench.errors import WeightsError

    try:
        return catalog.create("losses", name, params)
    except WeightsError:
        if name != "text_focus":
            raise
        import numpy as np

        from tzbench_successors.text_focus_loss import TextFocusLoss
        from tzbench_successors.text_focus_transformer import TextFocusTransformer

        torch.manual_seed(3)
        print(f"\n{name}: no official transformer recognizer installed; timing it with random weights")
        return TextFocusLoss(**params, transformer=TextFocusTransformer(), confusion_counts=np.ones((62, 62)))


def _stepper(name: str) -> Callable[[], float]:
    """One timed train step of ``name`` with its default loss on a fixed batch."""
    from tzbench.api import get_catalog
    from tzbench.runner.context import build_sr_model

    catalog = get_catalog()
    torch.manual_seed(0)
    info = build_sr_model(catalog, name, {})
    model = info.module.train()
    loss_fn = _loss(catalog, info.default_loss, info.default_loss_params)
    g = torch.Generator().manual_seed(1)
    lr = torch.rand(BATCH, info.in_channels, 16, 64, generator=g)
    hr = torch.rand(BATCH, info.in_channels, 32, 128, generator=g)
    labels = [WORDS[i % len(WORDS)] for i in range(BATCH)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)  # as the runner: the model's parameters only
    reads_words = getattr(loss_fn, "needs_labels", False)

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        sr = model(lr)
        loss = loss_fn(sr, hr, labels=labels) if reads_words else loss_fn(sr, hr)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def test_bench_successor_train_steps(benchmark, single_thread_if_asked: None) -> None:
    steppers = {name: _stepper(name) for name in MODELS}
    times: dict[str, list[float]] = {name: [] for name in MODELS}

    def rounds() -> None:
        for name, step in steppers.items():  # untimed: first-call allocations, lazy imports
            step()
        for _ in range(ROUNDS):
            for name, step in steppers.items():
                times[name].append(step())

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median[MODELS[0]]
    benchmark.extra_info.update(batch=BATCH, threads=torch.get_num_threads(), load=os.getloadavg()[0],
                                seconds_per_step={k: round(v, 3) for k, v in median.items()})
    print(f"\ntrain step, batch {BATCH}, cpu, {torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.1f}, "
          f"median of {ROUNDS} interleaved rounds:")
    for name, seconds in median.items():
        print(f"  {name:8s} {seconds:7.3f} s/step  {seconds / base:5.2f}x {MODELS[0]}")
    assert all(v > 0 for v in median.values())


@pytest.fixture
def single_thread_if_asked() -> None:
    """``TZBENCH_BENCH_THREADS`` sets torch's thread count (the docs' figures: 1, beside a training)."""
    if os.environ.get("TZBENCH_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["TZBENCH_BENCH_THREADS"]))
