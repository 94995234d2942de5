"""Throughput of every judge: images/s of ``recognize`` on a batch of 64 HR-size (128x32) crops.

Outside the default run (the pytest config ignores tests/bench). Run with

    python -m pytest tests/bench/test_bench_judges.py --benchmark-only -o addopts="" -s

The input is 64 clean rendered words (see :mod:`tzbench_recognizers.samples`); the judges
without weights run with their random initialisation, which costs the same as trained
weights, except ASTER: untrained, its beams never end, so its search runs all 100 steps, as the
official one always does; tests/bench/test_bench_aster.py measures it with ending beams). Uses CUDA for the torch judges when
present (ppocr and tesseract run on the CPU). Each result carries ``batch``, ``device`` and
``images_per_s`` in its ``extra_info``. Tesseract is measured only when its binary is
installed.
"""

from __future__ import annotations

import shutil

import pytest
import torch

import tzbench
from tzbench_recognizers.samples import CLEAN_WORDS, render_clean_words

BATCH = 64
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
NAMES = tzbench.list_recognizers()


def _images() -> torch.Tensor:
    words = (list(CLEAN_WORDS) * (BATCH // len(CLEAN_WORDS) + 1))[:BATCH]
    return render_clean_words(words)


@pytest.mark.parametrize("name", NAMES)
def test_bench_judge(benchmark, name: str) -> None:
    if name == "tesseract" and shutil.which("tesseract") is None:
        pytest.skip("tesseract binary not found: `apt-get install tesseract-ocr` to benchmark it")
    fields = tzbench.get_catalog().spec("recognizers", name).params.model_fields
    judge = tzbench.create_recognizer(name, **({"device": DEVICE} if "device" in fields else {}))
    x = _images()
    assert x.shape == (BATCH, 3, 32, 128)

    def step() -> None:
        judge.recognize(x)
        if DEVICE == "cuda":
            torch.cuda.synchronize()

    slow = name in ("aster", "tesseract", "moran")
    benchmark.pedantic(step, rounds=2 if slow else 3, warmup_rounds=1, iterations=1)
    images_per_s = BATCH / benchmark.stats.stats.mean
    dev = "cpu" if name in ("ppocr", "tesseract") else DEVICE
    benchmark.extra_info.update(batch=BATCH, device=dev, images_per_s=round(images_per_s, 2))
    print(f"\n{name:10s} batch {BATCH} on {dev}: {images_per_s:9.2f} images/s")
