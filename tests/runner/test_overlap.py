"""Overlapped evaluation: SR of the next batch while the judges read this one, judges side by side.

The overlapped path must give exactly what the one-thread reference path gives (rows, per-sample
readings), stop at the same batch with the same error, and leave no thread running behind it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from tzbench.api import get_catalog
from tzbench.config import DataConfig, EvalConfig
from tzbench.db.store import Store
from tzbench.runner.context import Judge, RunError, build_judges
from tzbench.runner.evaluate import evaluate, evaluate_model, summaries_to_rows
from tzbench.runner.overlap import SEQUENTIAL_ENV, JudgePool, Prefetcher, judge_threads, sequential_requested

SYNTH = {"n_train": 48, "n_test": 13}  # batches of 5, 5 and 3 per subset


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("tzbench-")}


class _Untrained(torch.nn.Module):
    """A seeded conv after nearest x2: outputs leave [0, 1], so clipping and PSNR both matter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


@pytest.mark.parametrize("protocol", ["clean", pytest.param("legacy", marks=pytest.mark.slow)])
def test_overlapped_eval_equals_sequential_rows_and_readings(protocol: str) -> None:
    catalog = get_catalog()
    names = ["ppocr", "ppocrv2", "crnn_tz"]  # registry.yaml's default judges: onnxruntime and torch
    provider = catalog.create("datasets", "synth", SYNTH)
    threads = torch.get_num_threads()
    out = {}
    for sequential in (True, False):
        # As evaluate() builds them: side by side, the onnxruntime judges get their share of the cores.
        judges = build_judges(catalog, names, torch.device("cpu"), None if sequential else judge_threads(len(names)))
        readings: dict[str, dict[str, list[str]]] = {}
        summaries, sizes, bad = evaluate_model(_Untrained(), provider, ["easy", "medium", "hard"], judges,
                                               torch.device("cpu"), batch_size=5, protocol=protocol, progress=False,
                                               sequential=sequential, readings=readings)
        out[sequential] = (summaries_to_rows(summaries, protocol), readings, summaries, sizes, bad)
    (rows_s, read_s, sum_s, sizes_s, bad_s), (rows_o, read_o, sum_o, sizes_o, bad_o) = out[True], out[False]
    assert rows_o == rows_s  # every value bit for bit, in the same order
    assert read_o == read_s and list(read_o) == ["easy", "medium", "hard"]
    assert all(len(r) == 13 for per in read_o.values() for r in per.values())
    assert sum_o == sum_s and sizes_o == sizes_s == {"easy": 13, "medium": 13, "hard": 13} and bad_o == bad_s
    # The readings are what the accuracy rows count (not a copy of nothing).
    assert {r.recognizer for r in rows_o if r.metric == "accuracy"} == set(names)
    assert _threads() == set() and torch.get_num_threads() == threads


def test_eval_records_the_same_rows_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    cfg = EvalConfig(model={"name": "bicubic"}, data=DataConfig(params=SYNTH, eval_batch_size=5),
                     judges=["ppocr", "ppocrv2"], device="cpu")
    rows = {}
    for flag in ("1", "0"):
        monkeypatch.setenv(SEQUENTIAL_ENV, flag)
        assert sequential_requested() is (flag == "1")
        run_id = evaluate(cfg, store, get_catalog(), progress=False).run_id
        rows[flag] = [(r.subset, r.recognizer, r.metric, r.value, r.step, r.n_samples) for r in store.results(run_id)]
    assert rows["0"] == rows["1"] and len(rows["1"]) == 3 * 4 + 4  # per subset psnr, ssim, 2 judges; plus all


class _NaNAtBatch(torch.nn.Module):
    """Identity-like x2 model that outputs NaN from its ``k``-th call on."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.calls = k, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        y = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        return y * float("nan") if self.calls >= self.k else y


class _Counting:
    """A judge that records how many images it has read (and reads everything as 'x')."""

    def __init__(self, fail_at: int | None = None, exc: type[BaseException] = ValueError) -> None:
        self.seen, self.fail_at, self.exc = 0, fail_at, exc

    def recognize(self, images: torch.Tensor) -> list[str]:
        if self.fail_at is not None and self.seen >= self.fail_at:
            raise self.exc(f"judge broke after {self.seen} images")
        self.seen += images.shape[0]
        return ["x"] * images.shape[0]


@pytest.mark.parametrize("sequential", [True, False])
def test_nan_output_stops_at_the_same_batch_both_ways(sequential: bool) -> None:
    provider = get_catalog().create("datasets", "synth", SYNTH)
    judge = _Counting()
    with pytest.raises(RunError, match=r"NaN or inf for 5 of 5 images in easy batch at sample 5:"):
        evaluate_model(_NaNAtBatch(2), provider, ["easy", "medium"], [Judge("c", judge, None, "native")],
                       torch.device("cpu"), batch_size=5, progress=False, sequential=sequential)
    assert judge.seen == 5  # the first batch was read, nothing after the broken one
    assert _threads() == set()


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt])
def test_a_judge_error_or_ctrl_c_propagates_and_stops_the_producer(exc: type[BaseException]) -> None:
    provider = get_catalog().create("datasets", "synth", SYNTH)
    model = _NaNAtBatch(10**9)
    judges = [Judge("a", _Counting(), None, "native"), Judge("b", _Counting(fail_at=10, exc=exc), None, "native")]
    with pytest.raises(exc, match="judge broke after 10 images"):
        evaluate_model(model, provider, ["easy", "medium", "hard"], judges, torch.device("cpu"), batch_size=5,
                       progress=False, sequential=False)
    assert _threads() == set()
    # The producer ran at most its queue depth (2) plus the batch in hand ahead of the judges.
    assert 3 <= model.calls <= 3 + 3


def test_prefetcher_keeps_order_and_stays_bounded() -> None:
    made: list[int] = []

    def source():
        for i in range(50):
            made.append(i)
            yield i

    got = []
    with Prefetcher(source(), depth=2) as items:
        for i in items:
            time.sleep(0.002)
            got.append(i)
            assert len(made) - len(got) <= 3  # two queued, one being put
    assert got == list(range(50))


def test_prefetcher_reraises_the_producers_exception_after_its_items() -> None:
    boom = OSError("disk on fire")

    def source():
        yield 1
        yield 2
        raise boom

    got: list[int] = []
    with pytest.raises(OSError) as info, Prefetcher(source()) as items:
        got.extend(items)
    assert info.value is boom and got == [1, 2]


def test_prefetcher_stops_the_producer_when_the_consumer_leaves() -> None:
    closed = threading.Event()

    def source():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    pf = Prefetcher(source(), depth=1, name="tzbench-test-prefetch")
    with pf as items:
        for i in items:
            if i == 3:
                break
    assert closed.is_set() and not pf._thread.is_alive()


def test_judge_pool_runs_judges_side_by_side_in_order() -> None:
    barrier = threading.Barrier(3, timeout=10)  # passes only when all three read at the same time

    class Waits:
        def __init__(self, word: str) -> None:
            self.word = word

        def recognize(self, images: torch.Tensor) -> list[str]:
            barrier.wait()
            assert not torch.is_grad_enabled()
            return [self.word] * images.shape[0]

    with JudgePool([Waits("a"), Waits("b"), Waits("c")]) as pool:
        assert pool.read(torch.zeros(2, 3, 32, 128)) == [["a", "a"], ["b", "b"], ["c", "c"]]
    failing = JudgePool([_Counting(), _Counting(fail_at=0), _Counting(fail_at=0, exc=KeyError)])
    with failing as pool, pytest.raises(ValueError, match="after 0 images"):  # the first failing judge in order
        pool.read(torch.zeros(2, 3, 32, 128))
