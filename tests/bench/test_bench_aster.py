"""ASTER judge: the early-stopping beam search (default) against the official 100-step search.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_aster.py --benchmark-only -o addopts="" -s

Batch 64 of the judge benchmark's clean rendered words (128x32), the whole network (rectifier,
encoder, search) as the judge runs it, both searches alternated on the same network and input
so that the ratio is measured side by side. Two weight settings (ASTER ships no weights):

* ``rule_b``: the reference's deterministic rule B. Its beams never end, so no sample can stop
  early: this measures only the batched decoder work (``xEmbed`` once per sample).
* ``fitted``: rule B with the decoder fitted briefly on the ``wild`` train split
  (``examples/aster_early_stop.py``), so beams end after a word as a trained reader's do.
  Needs ``../shared/data/wild-train`` (or ``$TZBENCH_WILD``); skipped without it.

Both assert that the two searches read the same strings. Each result carries images/s of both
paths and their ratio in ``extra_info``; a summary is printed at the end.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from pathlib import Path

import pytest
import torch

from tzbench.data.errors import DatasetError
from tzbench_recognizers.aster.judge import get_str_list
from tzbench_recognizers.aster.net import ASTER
from tzbench_recognizers.samples import CLEAN_WORDS, render_clean_words

BATCH = int(os.environ.get("TZBENCH_ASTER_BENCH_BATCH", "64"))  # a smaller one for a quick smoke run
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aster_early_stop.py"
_RESULTS: dict[str, str] = {}


def _example():
    spec = importlib.util.spec_from_file_location("aster_early_stop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _net(weights: str) -> ASTER:
    example = _example()
    if weights == "rule_b":
        return example.rule_b_aster()
    try:
        return example.fitted_aster()
    except DatasetError as exc:  # no wild data on this machine
        pytest.skip(f"fitted weights need the wild data: {exc}")


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest):
    yield
    if not _RESULTS:
        return
    lines = [f"ASTER judge, batch {BATCH}, {DEVICE}, {torch.get_num_threads()} threads:"]
    lines += [f"  {key:8s} {value}" for key, value in _RESULTS.items()]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join(lines))


@pytest.mark.parametrize("weights", ["rule_b", "fitted"])
def test_bench_aster_early_stop(benchmark, weights: str) -> None:
    net = _net(weights).to(DEVICE)
    words = (list(CLEAN_WORDS) * (BATCH // len(CLEAN_WORDS) + 1))[:BATCH]
    x = (render_clean_words(words) * 2 - 1).to(DEVICE)
    times: dict[bool, list[float]] = {False: [], True: []}
    reads: dict[bool, list[str]] = {}
    lengths: list[int] = []

    def pair() -> None:
        for early in (False, True):
            net.beam_early_stop = early
            start = time.perf_counter()
            with torch.no_grad():
                out = net(x)
            _sync()
            times[early].append(time.perf_counter() - start)
            reads[early] = get_str_list(out["pred_rec"].cpu())
            if early:
                lengths[:] = out["top_beam_length"].tolist()

    benchmark.group = "aster-early-stop"
    benchmark.pedantic(pair, rounds=2, warmup_rounds=1, iterations=1)
    assert reads[True] == reads[False]
    ref, fast = (statistics.median(times[e][1:]) for e in (False, True))
    ended = sum(n < net.max_len_labels for n in lengths)
    benchmark.extra_info.update(batch=BATCH, device=str(DEVICE), threads=torch.get_num_threads(),
                                reference_images_per_s=round(BATCH / ref, 2),
                                early_stop_images_per_s=round(BATCH / fast, 2), speedup=round(ref / fast, 2))
    _RESULTS[weights] = (f"reference {BATCH / ref:7.2f} images/s, early stop {BATCH / fast:7.2f} images/s, "
                         f"ratio {ref / fast:5.2f}x (median of 2 alternated rounds; {ended}/{BATCH} top beams "
                         f"end before step {net.max_len_labels})")
